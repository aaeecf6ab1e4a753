import { INotebookTracker } from '@jupyterlab/notebook';

/**
 * Select and scroll to the cell whose model id is `cellId` in the active notebook.
 * Answers whether the cell still exists there.
 */
export function revealCell(
  notebooks: INotebookTracker,
  cellId: string | null
): boolean {
  const notebook = notebooks.currentWidget?.content;
  if (!notebook || cellId === null) {
    return false;
  }
  const index = notebook.widgets.findIndex(cell => cell.model.id === cellId);
  if (index < 0) {
    return false;
  }
  notebook.deselectAll();
  notebook.activeCellIndex = index;
  // The notebook is windowed: only scrollToItem reaches cells that are not rendered.
  void notebook.scrollToItem(index, 'smart');
  return true;
}
