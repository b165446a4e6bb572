import { closeSync, existsSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/*
 * The one CRIU image format Ferry has to understand for post-copy: a task's pagemap.
 *
 * A CRIU image file is two little-endian u32 magics (the common one, then the image's own),
 * then entries, each a u32 length and a protobuf message. pagemap-PID.img holds a
 * pagemap_head (the id N of pages-N.img) and then one pagemap_entry per run of pages:
 * vaddr (field 1), compat_nr_pages (2), in_parent (3), flags (4), nr_pages (5). The pages of
 * every entry flagged PRESENT follow one another in pages-N.img, in pagemap order.
 *
 * An ordinary dump already flags the pages userfaultfd can serve later (private anonymous
 * memory, not the stack) LAZY|PRESENT. CRIU's own lazy dump writes those entries as LAZY only
 * and leaves their pages out of pages-N.img; a restore with --lazy-pages then reads the other
 * pages locally and leaves the lazy ones to the lazy-pages daemon. `splitForLazyRestore`
 * turns an ordinary dump into exactly that, and keeps the untouched images beside it.
 */

const IMG_COMMON_MAGIC = 0x54564319;
const PAGEMAP_MAGIC = 0x56084025;
const PAGE_SIZE = 4096;

export const PE_PARENT = 1;
export const PE_LAZY = 2;
export const PE_PRESENT = 4;

export interface PagemapEntry {
  vaddr: bigint;
  nrPages: number;
  flags: number;
  /** The entry as read, so fields this code does not know survive a rewrite. */
  raw: Buffer;
}

export interface Pagemap {
  /** The pagemap_head message as read. */
  head: Buffer;
  pagesId: number;
  entries: PagemapEntry[];
}

interface Field {
  no: number;
  wire: number;
  /** Varint fields only. */
  value: bigint;
  /** The whole field (tag included), as it was encoded. */
  bytes: Buffer;
}

function readVarint(buf: Buffer, at: number): { value: bigint; next: number } {
  let value = 0n;
  let shift = 0n;
  for (let i = at; i < buf.length; i++) {
    const b = buf[i];
    value |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return { value, next: i + 1 };
    shift += 7n;
    if (shift > 63n) break;
  }
  throw new Error(`bad varint at byte ${at}`);
}

function writeVarint(value: bigint): Buffer {
  const out: number[] = [];
  let v = value;
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}

function fields(msg: Buffer): Field[] {
  const out: Field[] = [];
  let at = 0;
  while (at < msg.length) {
    const start = at;
    const tag = readVarint(msg, at);
    at = tag.next;
    const no = Number(tag.value >> 3n);
    const wire = Number(tag.value & 7n);
    let value = 0n;
    if (wire === 0) {
      const v = readVarint(msg, at);
      value = v.value;
      at = v.next;
    } else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else if (wire === 2) {
      const len = readVarint(msg, at);
      at = len.next + Number(len.value);
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
    if (at > msg.length) throw new Error('truncated protobuf message');
    out.push({ no, wire, value, bytes: msg.subarray(start, at) });
  }
  return out;
}

function decodeEntry(raw: Buffer): PagemapEntry {
  let vaddr: bigint | undefined;
  let compat = 0;
  let nrPages: number | undefined;
  let flags = 0;
  let inParent = false;
  for (const f of fields(raw)) {
    if (f.wire !== 0) continue;
    if (f.no === 1) vaddr = f.value;
    else if (f.no === 2) compat = Number(f.value);
    else if (f.no === 3) inParent = f.value !== 0n;
    else if (f.no === 4) flags = Number(f.value);
    else if (f.no === 5) nrPages = Number(f.value);
  }
  if (vaddr === undefined) throw new Error('pagemap entry without vaddr');
  // Images of old CRIUs say "in parent" with a field of its own instead of a flag.
  if (inParent) flags |= PE_PARENT;
  return { vaddr, nrPages: nrPages ?? compat, flags, raw };
}

/** The entry with other flags, every other field kept as it was. */
export function withFlags(e: PagemapEntry, flags: number): PagemapEntry {
  const kept = fields(e.raw)
    .filter((f) => f.no !== 4)
    .map((f) => f.bytes);
  const raw = Buffer.concat([...kept, writeVarint(BigInt((4 << 3) | 0)), writeVarint(BigInt(flags))]);
  return { ...e, flags, raw };
}

export function parsePagemap(buf: Buffer): Pagemap {
  if (buf.length < 8 || buf.readUInt32LE(0) !== IMG_COMMON_MAGIC || buf.readUInt32LE(4) !== PAGEMAP_MAGIC) throw new Error('not a CRIU pagemap image (bad magic)');
  const msgs: Buffer[] = [];
  let at = 8;
  while (at < buf.length) {
    if (at + 4 > buf.length) throw new Error('truncated pagemap image');
    const len = buf.readUInt32LE(at);
    at += 4;
    if (at + len > buf.length) throw new Error('truncated pagemap image');
    msgs.push(buf.subarray(at, at + len));
    at += len;
  }
  const head = msgs.shift();
  if (!head) throw new Error('pagemap image without a head');
  const id = fields(head).find((f) => f.no === 1 && f.wire === 0);
  if (!id) throw new Error('pagemap head without pages_id');
  return { head, pagesId: Number(id.value), entries: msgs.map(decodeEntry) };
}

export function encodePagemap(pm: Pagemap): Buffer {
  const parts: Buffer[] = [];
  const magic = Buffer.alloc(8);
  magic.writeUInt32LE(IMG_COMMON_MAGIC, 0);
  magic.writeUInt32LE(PAGEMAP_MAGIC, 4);
  parts.push(magic);
  for (const m of [pm.head, ...pm.entries.map((e) => e.raw)]) {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(m.length, 0);
    parts.push(len, m);
  }
  return Buffer.concat(parts);
}

export interface SplitPlan {
  pagemap: Pagemap;
  /** Byte ranges of the original pages-N.img that stay in the image the destination gets. */
  keep: { offset: number; length: number }[];
  lazyPages: number;
  keptPages: number;
}

/** Which pages leave the shipped image: every LAZY|PRESENT entry becomes LAZY, its pages stay behind. */
export function planSplit(pm: Pagemap): SplitPlan {
  let offset = 0;
  let lazyPages = 0;
  let keptPages = 0;
  const keep: { offset: number; length: number }[] = [];
  const entries = pm.entries.map((e) => {
    if ((e.flags & PE_PRESENT) === 0) return e;
    const length = e.nrPages * PAGE_SIZE;
    const at = offset;
    offset += length;
    if (e.flags & PE_LAZY) {
      lazyPages += e.nrPages;
      return withFlags(e, e.flags & ~PE_PRESENT);
    }
    keptPages += e.nrPages;
    const last = keep[keep.length - 1];
    if (last && last.offset + last.length === at) last.length += length;
    else keep.push({ offset: at, length });
    return e;
  });
  return { pagemap: { ...pm, entries }, keep, lazyPages, keptPages };
}

export interface SplitResult {
  /** Pages left out of the shipped images: served from `keepDir` on demand. */
  lazyPages: number;
  /** Pages still in the shipped images (read at restore, before the container runs). */
  keptPages: number;
  lazyBytes: number;
  shippedPageBytes: number;
  /** Task pagemaps rewritten. */
  tasks: number;
  ms: number;
}

const TASK_PAGEMAP = /^pagemap-(\d+)\.img$/;

function copyRanges(from: string, to: string, ranges: { offset: number; length: number }[]): void {
  const src = openSync(from, 'r');
  const dst = openSync(to, 'wx', 0o600);
  try {
    const buf = Buffer.alloc(1 << 20);
    for (const r of ranges) {
      let done = 0;
      while (done < r.length) {
        const n = readSync(src, buf, 0, Math.min(buf.length, r.length - done), r.offset + done);
        if (n <= 0) throw new Error(`${from} ends before byte ${r.offset + done}`);
        writeSync(dst, buf, 0, n);
        done += n;
      }
    }
  } finally {
    closeSync(src);
    closeSync(dst);
  }
}

/**
 * Turns an ordinary CRIU dump in `imagesDir` into a lazy one, in place, and keeps the complete
 * original in `keepDir` (hard links: no page is copied, nothing is lost). `keepDir` must be on
 * the same mount as `imagesDir`, and must not exist yet.
 *
 * Each rewritten file is written under a temporary name and renamed over the original, which
 * breaks its hard link: `keepDir` keeps the original pagemap and pages, `imagesDir` gets the
 * lazy ones. Anything thrown before the first rename leaves `imagesDir` as it was.
 */
export function splitForLazyRestore(imagesDir: string, keepDir: string): SplitResult {
  const t0 = Date.now();
  if (existsSync(keepDir)) throw new Error(`${keepDir} exists already: not splitting the same dump twice`);
  mkdirSync(keepDir, { mode: 0o700 });
  const names = readdirSync(imagesDir);
  for (const n of names) if (statSync(join(imagesDir, n)).isFile()) linkSync(join(imagesDir, n), join(keepDir, n));
  const renames: [string, string][] = [];
  const out: SplitResult = { lazyPages: 0, keptPages: 0, lazyBytes: 0, shippedPageBytes: 0, tasks: 0, ms: 0 };
  try {
    for (const n of names) {
      if (!TASK_PAGEMAP.test(n)) continue;
      const pm = parsePagemap(readFileSync(join(imagesDir, n)));
      const plan = planSplit(pm);
      if (plan.lazyPages === 0) continue;
      const pages = `pages-${pm.pagesId}.img`;
      const tmpPages = join(imagesDir, `.${pages}.ferry-lazy`);
      const tmpMap = join(imagesDir, `.${n}.ferry-lazy`);
      rmSync(tmpPages, { force: true });
      rmSync(tmpMap, { force: true });
      copyRanges(join(imagesDir, pages), tmpPages, plan.keep);
      writeFileSync(tmpMap, encodePagemap(plan.pagemap), { mode: 0o600, flag: 'wx' });
      renames.push([tmpPages, join(imagesDir, pages)], [tmpMap, join(imagesDir, n)]);
      out.tasks += 1;
      out.lazyPages += plan.lazyPages;
      out.keptPages += plan.keptPages;
    }
  } catch (e: unknown) {
    for (const [tmp] of renames) rmSync(tmp, { force: true });
    rmSync(keepDir, { recursive: true, force: true });
    throw e;
  }
  for (const [tmp, final] of renames) renameSync(tmp, final);
  out.lazyBytes = out.lazyPages * PAGE_SIZE;
  out.shippedPageBytes = out.keptPages * PAGE_SIZE;
  out.ms = Date.now() - t0;
  return out;
}

/**
 * Puts the complete dump back into `imagesDir` from `keepDir` (the rollback: podman then
 * restores the container in place from a whole image). Hard links again, each renamed over
 * the lazy file, so a crash halfway leaves each file either lazy or whole, and a second run
 * finishes the job.
 */
export function unsplit(imagesDir: string, keepDir: string): number {
  let n = 0;
  for (const name of readdirSync(keepDir)) {
    if (!/^(pagemap-\d+|pages-\d+)\.img$/.test(name)) continue;
    // Already the kept file (rename would then do nothing and leave the temporary link behind).
    if (existsSync(join(imagesDir, name)) && statSync(join(imagesDir, name)).ino === statSync(join(keepDir, name)).ino) continue;
    const tmp = join(imagesDir, `.${name}.ferry-whole`);
    rmSync(tmp, { force: true });
    linkSync(join(keepDir, name), tmp);
    renameSync(tmp, join(imagesDir, name));
    n += 1;
  }
  return n;
}
