/**
 * Serialise a traced `Graph` to an ONNX ModelProto (protobuf via `onnx-proto`). Only the nodes
 * the requested outputs need are written, and only the inputs those nodes read are declared, so
 * a session's inputs are exactly what must be fed.
 */
import onnxProto from 'onnx-proto';
import type { DType } from './dtype.ts';
import { FileTensor, type StoredTensor } from './file-tensor.ts';
import type { Attr, Graph, GraphNode } from './graph.ts';
import type { HostTensor } from './host-tensor.ts';
import type { Shape } from './shape.ts';
import type { Tensor } from './tensor.ts';

const { onnx } = onnxProto;

export const OPSET = 18;

const ELEM_TYPE: Record<DType, number> = { float32: 1, uint8: 2, int32: 6, int64: 7, bool: 9, float64: 11 };

export interface ValueSpec {
  name: string;
  dtype: DType;
  shape: Shape;
}

export interface SerializeOptions {
  /**
   * Values to bake in as initializers, by input name (e.g. parameters, for inference). A
   * FileTensor is declared as external data at its place in its file, which onnxruntime reads.
   */
  embed?: ReadonlyMap<string, StoredTensor>;
  /**
   * Embedded values of at least this many bytes are written as ONNX external data (default
   * EXTERNAL_DATA_FROM_BYTES): the protobuf names them, `externalData` carries their bytes as
   * views of the caller's arrays. No serialised copy of the weights is made, and models past
   * protobuf's 2 GiB limit can be created.
   */
  externalFromBytes?: number;
  graphName?: string;
}

export interface SerializedModel {
  bytes: Uint8Array;
  /** Inputs the session must be fed (graph inputs used by the outputs and not embedded). */
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  nodeCount: number;
  /** Bytes of initializers stored as external data, by the location the protobuf gives them. */
  externalData: ExternalData[];
  /** The folder of the files that embedded FileTensors live in (onnxruntime reads them there). */
  externalFolder?: string;
}

export interface ExternalData {
  path: string;
  data: Uint8Array;
}

export const EXTERNAL_DATA_FROM_BYTES = 64 * 1024;

function tensorBytes(t: HostTensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

function tensorProto(name: string, t: HostTensor): onnxProto.onnx.ITensorProto {
  return { name, dims: [...t.shape], dataType: ELEM_TYPE[t.dtype], rawData: tensorBytes(t) };
}

/** An initializer whose bytes live outside the protobuf, in `location` from `offset`. */
function externalTensorProto(
  name: string,
  t: { dtype: DType; shape: readonly number[] },
  location: string,
  offset: number,
  length: number,
): onnxProto.onnx.ITensorProto {
  return {
    name,
    dims: [...t.shape],
    dataType: ELEM_TYPE[t.dtype],
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [
      { key: 'location', value: location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(length) },
    ],
  };
}

function valueInfo(v: ValueSpec): onnxProto.onnx.IValueInfoProto {
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType: ELEM_TYPE[v.dtype],
        shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attributeProto(name: string, a: Attr): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.kind) {
    case 'int':
      return { name, type: T.INT, i: a.value };
    case 'float':
      return { name, type: T.FLOAT, f: a.value };
    case 'string':
      return { name, type: T.STRING, s: new TextEncoder().encode(a.value) };
    case 'ints':
      return { name, type: T.INTS, ints: a.value };
    case 'floats':
      return { name, type: T.FLOATS, floats: a.value };
    case 'tensor':
      return { name, type: T.TENSOR, t: tensorProto('', a.value) };
  }
}

/** Nodes needed to compute `outputs`, in graph (topological) order. */
function liveNodes(graph: Graph, outputs: readonly string[]): GraphNode[] {
  const needed = new Set(outputs);
  const keep: boolean[] = new Array(graph.nodes.length).fill(false);
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const n = graph.nodes[i];
    if (n.outputs.some((o) => needed.has(o))) {
      keep[i] = true;
      for (const inp of n.inputs) if (inp) needed.add(inp);
    }
  }
  return graph.nodes.filter((_, i) => keep[i]);
}

/** Serialise the subgraph computing `outputs` (keys are the ONNX output names). */
export function serialize(
  graph: Graph,
  outputs: Record<string, Tensor>,
  options: SerializeOptions = {},
): SerializedModel {
  // Outputs are named by renaming the value that produces them (no Identity copy), except where
  // that is impossible: a graph input or constant as output, or one value under two names.
  const produced = new Set<string>();
  for (const n of graph.nodes) for (const o of n.outputs) produced.add(o);
  const rename = new Map<string, string>();
  const extra: GraphNode[] = [];
  const outSpecs: ValueSpec[] = [];
  for (const [name, t] of Object.entries(outputs)) {
    if (t.graph !== graph)
      throw new Error(`serialize: output "${name}" (${t.name}) belongs to another graph`);
    if (t.name !== name) {
      if (produced.has(t.name) && !rename.has(t.name)) rename.set(t.name, name);
      else
        extra.push({
          opType: 'Identity',
          domain: '',
          inputs: [rename.get(t.name) ?? t.name],
          outputs: [name],
          attrs: {},
        });
    }
    outSpecs.push({ name, dtype: t.dtype, shape: t.shape });
  }
  const renamed = (v: string) => rename.get(v) ?? v;
  const nodes = [
    ...liveNodes(
      graph,
      Object.values(outputs).map((t) => t.name),
    ).map((n) => ({
      ...n,
      inputs: n.inputs.map(renamed),
      outputs: n.outputs.map(renamed),
    })),
    ...extra,
  ];
  const used = new Set<string>();
  for (const n of nodes) for (const i of n.inputs) if (i) used.add(i);
  for (const o of outSpecs) used.add(o.name);
  for (const t of Object.values(outputs)) used.add(t.name);

  const embed = options.embed ?? new Map<string, HostTensor>();
  // onnxruntime looks every external location up in the in-memory table once it has one, so a
  // session that reads files gets its host values inline (the token table beside weights on disk).
  const readsFiles = [...embed.values()].some((v) => v instanceof FileTensor);
  const externalFrom = readsFiles
    ? Number.POSITIVE_INFINITY
    : (options.externalFromBytes ?? EXTERNAL_DATA_FROM_BYTES);
  const externalData: ExternalData[] = [];
  let externalFolder: string | undefined;
  const inputs: ValueSpec[] = [];
  const initializer: onnxProto.onnx.ITensorProto[] = [];
  for (const t of graph.inputs) {
    if (!used.has(t.name)) continue;
    const value = embed.get(t.name);
    if (value) {
      if (
        value.dtype !== t.dtype ||
        value.shape.length !== t.rank ||
        value.shape.some((d, i) => d !== t.shape[i])
      ) {
        throw new Error(
          `serialize: value for "${t.name}" is ${value.dtype}[${value.shape.join(', ')}], the graph declares ${t.dtype}[${t.shape.join(', ')}]`,
        );
      }
      if (value instanceof FileTensor) {
        if (externalFolder !== undefined && externalFolder !== value.folder)
          throw new Error(
            `serialize: "${t.name}" is in ${value.folder}, other embedded weights in ${externalFolder}; onnxruntime reads one folder per session`,
          );
        externalFolder = value.folder;
        initializer.push(externalTensorProto(t.name, value, value.file, value.offset, value.byteLength));
      } else if (value.data.byteLength >= externalFrom) {
        // One "file" per tensor, so the caller's array is handed over as it is, never concatenated.
        const path = `w${externalData.length}.bin`;
        externalData.push({ path, data: tensorBytes(value) });
        initializer.push(externalTensorProto(t.name, value, path, 0, value.data.byteLength));
      } else initializer.push(tensorProto(t.name, value));
    } else inputs.push({ name: t.name, dtype: t.dtype, shape: t.shape });
  }
  for (const [name, value] of graph.initializers)
    if (used.has(name)) initializer.push(tensorProto(name, value));

  const model = onnx.ModelProto.create({
    irVersion: 9,
    producerName: 'maven-ts',
    opsetImport: [
      { domain: '', version: OPSET },
      ...[...graph.domains].map((domain) => ({ domain, version: 1 })),
    ],
    graph: {
      name: options.graphName ?? 'maven',
      node: nodes.map((n) => ({
        opType: n.opType,
        domain: n.domain,
        input: n.inputs,
        output: n.outputs,
        name: n.outputs[0],
        attribute: Object.entries(n.attrs).map(([k, a]) => attributeProto(k, a)),
      })),
      input: inputs.map(valueInfo),
      output: outSpecs.map(valueInfo),
      initializer,
    },
  });
  return {
    bytes: onnx.ModelProto.encode(model).finish(),
    inputs,
    outputs: outSpecs,
    nodeCount: nodes.length,
    externalData,
    ...(externalFolder === undefined ? {} : { externalFolder }),
  };
}
