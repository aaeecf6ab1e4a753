/**
 * `cellops:comment-on-cell` ("Comment on cell"): the Review tab on the active cell's
 * threads with the new-thread box focused. The cell context menu entry and the cell
 * toolbar button come from schema/plugin.json.
 */
import type { JupyterFrontEnd } from '@jupyterlab/application';
import type { INotebookTracker } from '@jupyterlab/notebook';
import type { TranslationBundle } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';

export const COMMENT_ON_CELL_COMMAND = 'cellops:comment-on-cell';

/** A speech bubble; `jp-icon3` lets themes recolour it. */
const commentSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M4 3h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm0 2v10h2v2l2.5-2H20V5zm3 3h10v2H7zm0 3h7v2H7z"/>
  </g>
</svg>`;

export const commentIcon = new LabIcon({
  name: 'cellops:comment',
  svgstr: commentSvg
});

export interface ICommentCommandOptions {
  notebooks: INotebookTracker;
  trans: TranslationBundle;
  /** Show the Review tab on cell `cellId` of `path` with its new-thread box focused. */
  open: (path: string, cellId: string) => void;
}

export function addCommentOnCellCommand(
  app: JupyterFrontEnd,
  options: ICommentCommandOptions
): void {
  const { notebooks, trans } = options;
  app.commands.addCommand(COMMENT_ON_CELL_COMMAND, {
    label: trans.__('Comment on cell'),
    caption: trans.__(
      'Start a thread about this cell in the cellops Review tab'
    ),
    icon: commentIcon,
    isEnabled: () => notebooks.currentWidget?.content.activeCell != null,
    execute: () => {
      const panel = notebooks.currentWidget;
      const cell = panel?.content.activeCell;
      if (panel && cell) {
        options.open(panel.context.localPath, cell.model.id);
      }
    }
  });
  const changed = (): void => {
    app.commands.notifyCommandChanged(COMMENT_ON_CELL_COMMAND);
  };
  notebooks.currentChanged.connect(changed);
  notebooks.activeCellChanged.connect(changed);
}
