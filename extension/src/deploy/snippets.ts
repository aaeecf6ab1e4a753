/**
 * Copyable client snippets for a deployment: `curl` and Python for the Open Inference
 * Protocol v2 (`POST {v2}/infer`) and the MLflow scoring protocol (`POST {invocations}`
 * with `dataframe_split`). The key is the placeholder `$CELLOPS_KEY`, never a real one.
 */
import type { IDeployment } from './deployClient';

/** One snippet: which client and protocol (the view names it), and its text. */
export interface ISnippet {
  id: 'curl-v2' | 'python-v2' | 'curl-mlflow' | 'python-mlflow';
  text: string;
}

/** One input column of a model's signature (name and numpy dtype). */
interface IColumn {
  name: string;
  dtype: string;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** numpy dtype → Open Inference Protocol datatype. */
function oipType(dtype: string): string {
  const known: Record<string, string> = {
    bool: 'BOOL',
    float16: 'FP16',
    float32: 'FP32',
    float64: 'FP64',
    int8: 'INT8',
    int16: 'INT16',
    int32: 'INT32',
    int64: 'INT64',
    uint8: 'UINT8',
    uint16: 'UINT16',
    uint32: 'UINT32',
    uint64: 'UINT64'
  };
  return Object.prototype.hasOwnProperty.call(known, dtype)
    ? known[dtype]
    : 'BYTES';
}

/** An example value of a column's type (a row of zeros, `false`, or text). */
function example(dtype: string): Json {
  const type = oipType(dtype);
  if (type === 'BOOL') {
    return false;
  }
  return type === 'BYTES' ? 'a' : 0;
}

/** The input columns a signature names; else `width` unnamed float columns. */
function columnsOf(signature: Record<string, unknown> | null): {
  named: boolean;
  columns: IColumn[];
} {
  const raw = Array.isArray(signature?.columns) ? signature.columns : [];
  const dtype =
    typeof signature?.dtype === 'string' ? signature.dtype : 'float64';
  const named = raw
    .map(c => c as { name?: unknown; dtype?: unknown })
    .filter((c): c is { name: string; dtype?: unknown } => {
      return typeof c.name === 'string';
    })
    .map(c => ({
      name: c.name,
      dtype: typeof c.dtype === 'string' ? c.dtype : dtype
    }));
  if (named.length > 0) {
    return { named: true, columns: named };
  }
  const shape = Array.isArray(signature?.shape) ? signature.shape : [];
  const width = typeof shape[1] === 'number' && shape[1] > 0 ? shape[1] : 1;
  return {
    named: false,
    columns: Array.from({ length: width }, (_, i) => ({
      name: String(i),
      dtype
    }))
  };
}

/** The signature's first example row when it fits the columns (a real prediction). */
function exampleRow(
  signature: Record<string, unknown> | null,
  columns: IColumn[]
): Json[] {
  const rows = Array.isArray(signature?.example) ? signature.example : [];
  const first: unknown = rows[0];
  const fits =
    Array.isArray(first) &&
    first.length === columns.length &&
    first.every(
      v =>
        typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean'
    );
  return fits ? first : columns.map(c => example(c.dtype));
}

/** An OIP v2 infer body of one row: one input per named column, else one 2-D tensor. */
export function v2Body(signature: Record<string, unknown> | null): Json {
  const { named, columns } = columnsOf(signature);
  const row = exampleRow(signature, columns);
  if (named) {
    return {
      inputs: columns.map((c, i) => ({
        name: c.name,
        datatype: oipType(c.dtype),
        shape: [1],
        data: [row[i]]
      }))
    };
  }
  return {
    inputs: [
      {
        name: 'input-0',
        datatype: oipType(columns[0].dtype),
        shape: [1, columns.length],
        data: row
      }
    ]
  };
}

/** An MLflow scoring body of one row (`dataframe_split`; `inputs` without column names). */
export function mlflowBody(signature: Record<string, unknown> | null): Json {
  const { named, columns } = columnsOf(signature);
  const row = exampleRow(signature, columns);
  return named
    ? { dataframe_split: { columns: columns.map(c => c.name), data: [row] } }
    : { inputs: [row] };
}

/** `text` in single quotes for a POSIX shell. */
export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, "'\\''")}'`;
}

/** A JSON value as a Python literal (True/False/None; JSON strings are Python strings). */
export function pythonLiteral(value: Json): string {
  if (value === null) {
    return 'None';
  }
  if (typeof value === 'boolean') {
    return value ? 'True' : 'False';
  }
  if (typeof value === 'number' || typeof value === 'string') {
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    return `[${value.map(pythonLiteral).join(', ')}]`;
  }
  const entries = Object.entries(value).map(
    ([k, v]) => `${JSON.stringify(k)}: ${pythonLiteral(v)}`
  );
  return `{${entries.join(', ')}}`;
}

function curl(url: string, body: Json, keyed: boolean): string {
  const lines = [`curl -sS -X POST ${shellQuote(url)}`];
  if (keyed) {
    lines.push(`-H "Authorization: Bearer $CELLOPS_KEY"`);
  }
  lines.push(
    `-H 'Content-Type: application/json'`,
    `-d ${shellQuote(JSON.stringify(body))}`
  );
  return lines.join(' \\\n  ');
}

function python(url: string, body: Json, keyed: boolean, read: string): string {
  const lines = ['import os', '', 'import requests', ''];
  lines.push(`url = ${JSON.stringify(url)}`);
  lines.push(
    keyed
      ? `headers = {"Authorization": f"Bearer {os.environ['CELLOPS_KEY']}"}`
      : 'headers = {}  # public: no key needed'
  );
  lines.push(`body = ${pythonLiteral(body)}`);
  lines.push(
    'r = requests.post(url, json=body, headers=headers, timeout=10)',
    'r.raise_for_status()',
    `print(r.json()${read})`
  );
  return lines.join('\n');
}

/** `curl` and Python for both protocols, with the deployment's own URLs. */
export function snippets(
  deployment: IDeployment,
  signature: Record<string, unknown> | null
): ISnippet[] {
  const keyed = !deployment.public;
  const infer = `${deployment.urls.v2.replace(/\/+$/, '')}/infer`;
  const invocations = deployment.urls.invocations;
  const v2 = v2Body(signature);
  const mlflow = mlflowBody(signature);
  return [
    {
      id: 'curl-v2',
      text: curl(infer, v2, keyed)
    },
    {
      id: 'python-v2',
      text: python(infer, v2, keyed, '["outputs"][0]["data"]')
    },
    {
      id: 'curl-mlflow',
      text: curl(invocations, mlflow, keyed)
    },
    {
      id: 'python-mlflow',
      text: python(invocations, mlflow, keyed, '["predictions"]')
    }
  ];
}
