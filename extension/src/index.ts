import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ServerConnection } from '@jupyterlab/services';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { requestAPI } from './api';

/**
 * What `GET cellops/api/v1/status` answers; only the fields the frontend reads.
 */
export interface IStatusReply {
  version?: string;
  [key: string]: unknown;
}

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

/**
 * Checks on start-up that the cellops server extension answers.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: 'cellops:plugin',
  description: 'cellops: MLOps inside JupyterLab.',
  autoStart: true,
  optional: [ITranslator],
  activate: (app: JupyterFrontEnd, translator: ITranslator | null): void => {
    // Not awaited: the check must not delay JupyterLab's start-up.
    void checkServer(
      app.serviceManager.serverSettings,
      translator ?? nullTranslator
    );
  }
};

export default plugin;
