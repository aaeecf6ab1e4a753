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
import type { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import type { Widget } from '@lumino/widgets';

import { ActivityStream } from './activity';
import { CellopsClient, requestAPI } from './api';
import { addCellHistoryCommand } from './cellHistory/command';
import { CellBadges } from './review/cellBadges';
import { addCommentOnCellCommand } from './review/commentCommand';
import { InboxWatcher, startNotifications } from './review/notifications';
import { ReviewClient } from './reviewClient';
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
export const OPEN_MODEL_COMMAND = 'cellops:open-model';

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

/** The arguments of `cellops:open-model`, or null when they are not usable. */
function modelTarget(
  args: ReadonlyPartialJSONObject
): { name: string; version?: number } | null {
  const { name, version } = args;
  if (typeof name !== 'string' || name === '') {
    return null;
  }
  // A bad version still shows the model, just without a marked row.
  const valid = typeof version === 'number' && Number.isInteger(version);
  return valid && version > 0 ? { name, version } : { name };
}

/**
 * Clicks on a ModelCard's link (`<a data-cellops-model="name" data-cellops-version="3">`,
 * HTML made in the kernel) open that version. Not JupyterLab's command linker: it asks
 * for confirmation in any notebook not fully trusted, and showing a read-only view of the
 * registry needs none.
 */
function followModelLinks(app: JupyterFrontEnd): void {
  document.body.addEventListener('click', event => {
    const target = event.target;
    const link =
      target instanceof Element
        ? target.closest<HTMLElement>('[data-cellops-model]')
        : null;
    if (!link) {
      return;
    }
    event.preventDefault();
    void app.commands.execute(OPEN_MODEL_COMMAND, {
      name: link.dataset.cellopsModel ?? '',
      version: Number(link.dataset.cellopsVersion)
    });
  });
}

/**
 * `cellops:open-model {name, version?}`: the Models tab on that model's versions. Model
 * cards in notebooks link to it (see `followModelLinks`), so it takes args and stays out
 * of the palette.
 */
function addOpenModelCommand(
  app: JupyterFrontEnd,
  sidebar: CellopsSidebar,
  translator: ITranslator
): void {
  const trans = translator.load('cellops');
  app.commands.addCommand(OPEN_MODEL_COMMAND, {
    label: args => {
      const target = modelTarget(args);
      if (target?.version !== undefined) {
        return trans.__(
          'Show version %1 of model %2 in cellops',
          String(target.version),
          target.name
        );
      }
      return target
        ? trans.__('Show model %1 in cellops', target.name)
        : trans.__('Show a model in cellops');
    },
    describedBy: {
      args: {
        type: 'object',
        properties: {
          name: { type: 'string', description: trans.__('The model') },
          version: {
            type: 'integer',
            minimum: 1,
            description: trans.__('The version to scroll to and mark')
          }
        },
        required: ['name']
      }
    },
    execute: async args => {
      const target = modelTarget(args);
      if (!target) {
        return; // e.g. a hand-edited link: nothing to show
      }
      app.shell.activateById(SIDEBAR_ID);
      await sidebar.showModel(target.name, target.version);
    }
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
    // The caller's inbox: the Activity tab's badge and a toast per new mention or review.
    const inbox = new InboxWatcher(ReviewClient.of(client), activity);

    const sidebar = new CellopsSidebar({
      client,
      notebooks,
      rendermime,
      translator,
      docManager,
      activity,
      inbox,
      onCommentsChanged: path => {
        badges.refresh(path);
      }
    });
    app.shell.add(sidebar, 'right', { rank: 600 });
    restorer?.add(sidebar, SIDEBAR_ID);
    startNotifications(inbox, translator.load('cellops'), item => {
      app.shell.activateById(SIDEBAR_ID);
      void sidebar.showActivityItem(item.activity);
    });
    // Not awaited: a backend without the review API only means no toasts.
    void inbox.start().catch(() => undefined);

    const reviewClient = ReviewClient.of(client);
    const trans = translator.load('cellops');
    // Comment badges on cells; a click opens that cell's threads in the Review tab.
    const badges = new CellBadges({
      client: reviewClient,
      notebooks,
      activity,
      trans,
      onOpen: (panel, cellId) => {
        // The badge's notebook becomes the one the sidebar follows.
        app.shell.activateById(panel.id);
        app.shell.activateById(SIDEBAR_ID);
        sidebar.showReview({ path: panel.context.localPath, cellId });
      }
    });
    addCommentOnCellCommand(app, {
      notebooks,
      trans,
      open: (path, cellId) => {
        app.shell.activateById(SIDEBAR_ID);
        sidebar.showReview({ path, cellId }, true);
      }
    });

    addToggleCommand(app, sidebar, translator, labShell, palette);
    addOpenModelCommand(app, sidebar, translator);
    followModelLinks(app);
    addCellHistoryCommand(app, {
      client,
      notebooks,
      rendermime,
      translator,
      activity
    });

    const settings = settingRegistry
      ? new TrackingSettingsSync(client, activity)
      : null;
    if (settingRegistry && settings) {
      // A changed setting may exclude the notebook shown or turn tracking off: say so.
      settings.applied.connect(() => void sidebar.refresh());
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
