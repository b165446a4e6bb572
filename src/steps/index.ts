import type { StepName } from '../engine/steps';
import { checkpoint } from './checkpoint';
import { cleanup } from './cleanup';
import type { Step } from './context';
import { cutover } from './cutover';
import { preflight } from './preflight';
import { restore } from './restore';
import { rollback } from './rollback';
import { transfer } from './transfer';
import { verify } from './verify';

export type { Step, StepContext, StepOutcome, RemoteHost, Progress } from './context';

export const STEPS: Readonly<Record<StepName, Step>> = { preflight, checkpoint, transfer, restore, verify, cutover, cleanup, rollback };
