/**
 * A configuration error, with the file and line it was found at. The message is in mosquitto's style:
 * `Error: Unknown configuration variable "foo" in /etc/midge/midge.conf:12.`
 */
export class ConfigError extends Error {
  /**
   * @param detail what is wrong, without the location: `Invalid port value (70000)`.
   * @param line 1-based; 0 when the error is about the file as a whole (it cannot be read).
   */
  constructor(readonly detail: string, readonly file: string, readonly line: number) {
    super(line > 0 ? `Error: ${detail} in ${file}:${line}.` : `Error: ${detail}.`);
    this.name = 'ConfigError';
  }
}
