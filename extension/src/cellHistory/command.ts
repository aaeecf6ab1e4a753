import type { JupyterFrontEnd } from '@jupyterlab/application';
import { MainAreaWidget } from '@jupyterlab/apputils';
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import type { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import type { ITranslator } from '@jupyterlab/translation';

import type { ActivityStream } from '../activity';
import type { CellopsClient } from '../api';
import { cellopsIcon } from '../icons';
import { CellHistoryView } from './view';

export const CELL_HISTORY_COMMAND = 'cellops:cell-history';

export interface ICellHistoryCommandOptions {
  client: CellopsClient;
  notebooks: INotebookTracker;
  rendermime: IRenderMimeRegistry;
  translator: ITranslator;
  activity: ActivityStream;
}

/**
 * Adds `cellops:cell-history`: opens (or brings forward) a main-area history of
 * the active cell of the current notebook. The context menu entry and the cell
 * toolbar button come from schema/plugin.json.
 */
export function addCellHistoryCommand(
  app: JupyterFrontEnd,
  options: ICellHistoryCommandOptions
): void {
  const { notebooks } = options;
  const trans = options.translator.load('cellops');
  // One view per notebook cell: asking again shows the open one.
  const open = new Map<string, MainAreaWidget<CellHistoryView>>();

  app.commands.addCommand(CELL_HISTORY_COMMAND, {
    label: trans.__('Show cell history'),
    caption: trans.__(
      'Every version of this cell’s code that ran, with its outputs and diffs'
    ),
    icon: cellopsIcon,
    isEnabled: () => notebooks.currentWidget?.content.activeCell != null,
    execute: () => {
      const panel = notebooks.currentWidget;
      const cell = panel?.content.activeCell;
      if (!panel || !cell) {
        return;
      }
      const key = `${panel.id}\n${cell.model.id}`;
      let widget = open.get(key);
      if (!widget || widget.isDisposed) {
        const index = panel.content.widgets.indexOf(cell) + 1;
        widget = createWidget(panel, cell.model.id, index, options);
        open.set(key, widget);
        widget.disposed.connect(() => open.delete(key));
        // Histories share one area beside the notebook rather than splitting it again.
        const beside = [...open.values()].find(
          w => w !== widget && w.isAttached
        );
        app.shell.add(
          widget,
          'main',
          beside
            ? { mode: 'tab-after', ref: beside.id }
            : { mode: 'split-right', ref: panel.id }
        );
      }
      app.shell.activateById(widget.id);
    }
  });

  // Keep the toolbar button and menu entry in step with the active cell.
  const changed = (): void => {
    app.commands.notifyCommandChanged(CELL_HISTORY_COMMAND);
  };
  notebooks.currentChanged.connect(changed);
  notebooks.activeCellChanged.connect(changed);
}

let counter = 0;

function createWidget(
  panel: NotebookPanel,
  cellId: string,
  index: number,
  options: ICellHistoryCommandOptions
): MainAreaWidget<CellHistoryView> {
  const trans = options.translator.load('cellops');
  const label = trans.__('History of cell %1', index);
  const content = new CellHistoryView({
    ...options,
    path: panel.context.localPath,
    cellId,
    label
  });
  const widget = new MainAreaWidget({ content });
  widget.id = `cellops-cell-history-${String(++counter)}`;
  widget.addClass('cellops-cell-history');
  widget.title.label = label;
  widget.title.caption = `${panel.context.localPath} — ${label}`;
  widget.title.icon = cellopsIcon;
  widget.title.closable = true;
  // Follow renames of the notebook; the cell id stays the same.
  const onPath = (): void => {
    content.path = panel.context.localPath;
  };
  panel.context.pathChanged.connect(onPath);
  widget.disposed.connect(() => {
    panel.context.pathChanged.disconnect(onPath);
  });
  return widget;
}
