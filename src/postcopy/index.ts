export { probeLazySupport, PIPE_SIZE_NEEDED } from './probe';
export type { LazyRole, LazySupport } from './probe';
export { lazyPaths, podmanWithWrapper, POSTCOPY_DIR } from './wrapper';
export type { LazyPaths } from './wrapper';
export type { SplitResult } from './criuImages';
export {
  abortLazyRestore,
  closePageTunnel,
  completeLazyCheckpoint,
  copyFailure,
  ensureWholeDump,
  finishOnSource,
  forgetLazyRestore,
  installLazyRuntime,
  lazyRestore,
  openPageTunnel,
  pageServerFailure,
  pathsOf,
  PostCopyError,
  prepareLazyCheckpoint,
  putBackWholeDump,
  raisePipeMaxSize,
  readLazyCopy,
  readLazyDump,
  removeLazyFiles,
  restorePipeMaxSize,
  rollbackInPlace,
  serveLazyPages,
  stopLazyDaemon,
  stopPageServer,
  waitAllPagesCopied,
} from './postcopy';
export type { AbortResult, CheckpointArgs, InstallOptions, LazyCheckpoint, LazyCopyState, LazyDump, LazyFiles, LazyHost, LazyMigration, RestoreArgs, SshTarget } from './postcopy';

/** Where the split script is, next to this module, for installLazyRuntime on a host that runs this same build. */
export const SPLIT_SCRIPT = require.resolve('./splitMain');
