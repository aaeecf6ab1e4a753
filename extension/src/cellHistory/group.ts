import type { IExecution } from '../api';

/** Consecutive executions of a cell with the same code. */
export interface ICodeVersion {
  /** 1 for the oldest code the history holds. */
  number: number;
  code: string;
  /** Newest first. */
  executions: IExecution[];
}

/**
 * Groups executions (newest first, as the server sends them) into code versions,
 * newest first: a new version starts wherever the code differs from the run before.
 * Running old code again after an edit is a new version too, because that is
 * what happened to the cell.
 */
export function groupByCode(executions: IExecution[]): ICodeVersion[] {
  const groups: Omit<ICodeVersion, 'number'>[] = [];
  for (const execution of executions) {
    const last = groups.at(-1);
    if (last?.code === execution.code) {
      last.executions.push(execution);
    } else {
      groups.push({ code: execution.code, executions: [execution] });
    }
  }
  return groups.map((group, index) => ({
    ...group,
    number: groups.length - index
  }));
}
