export * from './elementwise.ts';
export * from './loss.ts';
export * from './matmul.ts';
export * from './nn.ts';
export * from './quantize.ts';
export * from './reduce.ts';
export * from './shape-ops.ts';
export { shapeOf, sumToShape } from './util.ts';
