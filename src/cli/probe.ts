// The `--probe` syntax is also what plan files say, so its parser lives in the engine.
export { parseProbe } from '../engine/probe';
