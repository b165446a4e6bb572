import { StepError } from './StepError';

/**
 * The container this migration froze already runs on the destination, with the same podman
 * ID, while the record says it never got there (a Redis crash rewound it). The move happened:
 * the migration goes on from verify instead of starting over or rolling back.
 */
export class AlreadyMovedError extends StepError {
  constructor(
    message: string,
    readonly containerId: string,
    /** When this migration froze it (the source's marker), if anything still says: the record may have lost it too. */
    readonly frozenAt: number | undefined,
  ) {
    super(message, { code: 'ALREADY_MOVED', permanent: true });
    this.name = 'AlreadyMovedError';
    Object.setPrototypeOf(this, AlreadyMovedError.prototype);
  }
}
