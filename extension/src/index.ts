import {
  ILabShell,
  ILayoutRestorer,
  type JupyterFrontEnd,
  type JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import type { ServerConnection } from '@jupyterlab/services';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import type { Widget } from '@lumino/widgets';

import { ActivityStream } from './activity';
import { CellopsClient, requestAPI } from './api';
import { addCellHistoryCommand } from './cellHistory/command';
import { SETTINGS_PLUGIN_ID, TrackingSettingsSync } from './settings';
import { CellopsSidebar, SIDEBAR_ID } from './sidebar/panel';
import { CellopsStatusItem } from './statusbar';

/**
 * What `GET cellops/api/v1/status` answers; only the fields the frontend reads.
 */
export interface IStatusReply {
  version?: string;
  [key: string]: unknown;
}

export const TOGGLE_SIDEBAR_COMMAND = 'cellops:toggle-sidebar';

/**
 * Warn once in the console if the cellops server extension does not answer.
 */
async function checkServer(
  settings: ServerConnection.ISettings,
  translator: ITranslator
): Promise<void> {
  const trans = translator.load('cellops');
  try {
    await requestAPI<IStatusReply>('status', {}, settings);
  } catch (reason) {
    console.warn(
      trans.__(
        'The cellops server extension is not enabled, so cellops cannot record anything. Enable it with: jupyter server extension enable cellops_server'
      ),
      reason
    );
  }
}

/** `cellops:toggle-sidebar`: show the panel, or fold the right area if it is showing. */
function addToggleCommand(
  app: JupyterFrontEnd,
  sidebar: Widget,
  translator: ITranslator,
  labShell: ILabShell | null,
  palette: ICommandPalette | null
): void {
  const trans = translator.load('cellops');
  app.commands.addCommand(TOGGLE_SIDEBAR_COMMAND, {
    label: trans.__('Toggle cellops panel'),
    caption: trans.__('Show or hide the cellops history of the notebook'),
    isToggled: () => sidebar.isVisible,
    execute: () => {
      if (sidebar.isVisible && labShell) {
        labShell.collapseRight();
      } else {
        app.shell.activateById(SIDEBAR_ID);
      }
    }
  });
  palette?.addItem({
    command: TOGGLE_SIDEBAR_COMMAND,
    category: trans.__('cellops')
  });
}

/**
 * The cellops frontend: sidebar, cell history, status bar item, settings sync.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: SETTINGS_PLUGIN_ID,
  description: 'cellops: MLOps inside JupyterLab.',
  autoStart: true,
  requires: [INotebookTracker, IRenderMimeRegistry, IDocumentManager],
  optional: [
    ITranslator,
    ICommandPalette,
    IStatusBar,
    ISettingRegistry,
    ILayoutRestorer,
    ILabShell
  ],
  activate: (
    app: JupyterFrontEnd,
    notebooks: INotebookTracker,
    rendermime: IRenderMimeRegistry,
    docManager: IDocumentManager,
    translatorOrNull: ITranslator | null,
    palette: ICommandPalette | null,
    statusBar: IStatusBar | null,
    settingRegistry: ISettingRegistry | null,
    restorer: ILayoutRestorer | null,
    labShell: ILabShell | null
  ): void => {
    const translator = translatorOrNull ?? nullTranslator;
    // Not awaited: the check must not delay JupyterLab's start-up.
    void checkServer(app.serviceManager.serverSettings, translator);

    const client = new CellopsClient(app.serviceManager.serverSettings);
    const activity = new ActivityStream(client);

    const sidebar = new CellopsSidebar({
      client,
      notebooks,
      rendermime,
      translator,
      docManager,
      activity
    });
    app.shell.add(sidebar, 'right', { rank: 600 });
    restorer?.add(sidebar, SIDEBAR_ID);

    addToggleCommand(app, sidebar, translator, labShell, palette);
    addCellHistoryCommand(app, {
      client,
      notebooks,
      rendermime,
      translator,
      activity
    });

    const settings = settingRegistry ? new TrackingSettingsSync(client) : null;
    if (settingRegistry && settings) {
      void settings.start(settingRegistry);
    }

    if (statusBar) {
      const item = new CellopsStatusItem({
        client,
        notebooks,
        activity,
        settings,
        translator,
        onClick: () => {
          app.shell.activateById(SIDEBAR_ID);
        }
      });
      statusBar.registerStatusItem('cellops:status', {
        item,
        align: 'left',
        rank: 5,
        isActive: () => true
      });
    }
  }
};

export default plugin;
