// A Store kept in one JSON file: the MemoryStore, written to disk after every write (through a
// temporary file and a rename, so a killed process leaves the old file or the new one, never half
// of one). Enough for a terminal phone; an app uses its own database.

import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { MemoryStore, type MemoryStoreState, type WriteBatch } from '@fieldsync/client';

export class FileStore extends MemoryStore {
  constructor(private readonly path: string) {
    super(existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as MemoryStoreState) : undefined);
  }

  override async write(b: WriteBatch): Promise<void> {
    await super.write(b);
    this.save();
  }

  override async clear(): Promise<void> {
    await super.clear();
    this.save();
  }

  private save(): void {
    writeFileSync(this.path + '.tmp', JSON.stringify(this.snapshot()));
    renameSync(this.path + '.tmp', this.path);
  }
}
