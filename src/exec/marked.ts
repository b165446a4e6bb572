/**
 * The lines a remote shell script marked as its answers (`MARK rest`), without the mark. Over
 * SSH the user's shell start-up runs first, and whatever it prints must not be read as one.
 */
export function markedLines(output: string, mark: string): string[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith(`${mark} `))
    .map((l) => l.slice(mark.length + 1));
}
