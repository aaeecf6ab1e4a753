import { PathExt } from '@jupyterlab/coreutils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { Contents } from '@jupyterlab/services';

/** How many numbered names (`name-1.ipynb`, …) to try before giving up. */
const MAX_TRIES = 1000;

/** The first of `base.ipynb`, `base-1.ipynb`, … not among `taken`. */
export function freeName(base: string, taken: Set<string>): string {
  for (let i = 0; i < MAX_TRIES; i++) {
    const name = i === 0 ? `${base}.ipynb` : `${base}-${String(i)}.ipynb`;
    if (!taken.has(name)) {
      return name;
    }
  }
  throw new Error(`no free name for ${base}.ipynb in this folder`);
}

/**
 * Save `notebook` as a new file in `folder` named after `base` (never over a file listed
 * there) and open it as a notebook document; answers its path.
 */
export async function openAsNewNotebook(
  docManager: IDocumentManager,
  folder: string,
  base: string,
  notebook: Record<string, unknown>
): Promise<string> {
  const contents = docManager.services.contents;
  // Listing the folder first: probing names one by one would log a 404 per taken name.
  const listing = await contents.get(folder, { content: true });
  const items = (listing.content ?? []) as Contents.IModel[];
  const name = freeName(base, new Set(items.map(item => item.name)));
  // Saved straight under the free name. (Not an untitled file renamed: the file browser's
  // listing, refreshed meanwhile, fails with a 404 when a file vanishes under it.)
  const path = PathExt.join(folder, name);
  await contents.save(path, {
    type: 'notebook',
    format: 'json',
    content: notebook
  });
  docManager.openOrReveal(path);
  return path;
}
