import type { RegistryStorage } from "../../auth/store.js";

/** A registry kept in this process (tests, and one-process servers that want the same code path). */
export class MemoryRegistryStorage implements RegistryStorage {
  #version = 0;
  #text: string | undefined;

  async version(): Promise<number> {
    return this.#version;
  }

  async read(): Promise<{ version: number; text: string | undefined }> {
    return { version: this.#version, text: this.#text };
  }

  async write(expected: number, text: string): Promise<boolean> {
    if (expected !== this.#version) return false;
    this.#text = text;
    this.#version++;
    return true;
  }

  async close(): Promise<void> {}
}
