import { LabIcon } from '@jupyterlab/ui-components';

/**
 * A notebook cell with a clock: "cell history". Kept in sync with
 * style/icons/cellops.svg; inlined so no `*.svg` module declaration is needed.
 * `jp-icon3` lets JupyterLab's themes recolour it (readable in dark themes).
 */
const svgstr = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M2 3h16v6h-2V5H4v10h5v2H2zM6 7h8v2H6zM6 11h4v2H6z"/>
    <path fill-rule="evenodd" d="M17 11a6 6 0 1 0 0 12a6 6 0 1 0 0-12zm0 2a4 4 0 1 1 0 8a4 4 0 1 1 0-8z"/>
    <path d="M16 14h2v2.5l1.9 1.1-1 1.7-2.9-1.7z"/>
  </g>
</svg>`;

/** The cellops icon (sidebar tab, cell history command, main-area widget). */
export const cellopsIcon = new LabIcon({ name: 'cellops:icon', svgstr });
