// Field-level work on records: what an edit changed (the diff a mutation carries), and the view a
// device shows (the server's copy with its unacknowledged edits over it).
//
// The unit of change is a field, except for a task's checklist edited by a rep: reps write items'
// `done` one by one (docs/protocol.md §5.1), so each item is its own unit, named `checklist.<key>`,
// and a mutation carries only the items that changed. Keeping the unit small is what stops a
// device from sending back a manager's tick it never touched.

import type { Fields, RecordType } from './wire.js';

/** The fields a client never writes: the record's identity and version are the server's. */
const readOnly = new Set(['id', 'version']);

export interface ChecklistItem {
  key: string;
  label?: string;
  done?: boolean;
}

/** True when two JSON values are the same. */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => sameValue(x, bb[i]));
  }
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** Whether the caller writes a task's checklist item by item (reps) or whole (managers). */
export function itemWise(type: RecordType, field: string, role: string | undefined): boolean {
  return type === 'task' && field === 'checklist' && role === 'rep';
}

/** What an edit changed: the fields to send, and the units (fields or checklist items) it touched. */
export interface Diff {
  /** The mutation's `fields`: only what changed (a rep's checklist: only the changed items). */
  wire: Fields;
  /** The units changed, e.g. `phone`, `checklist.photos`; empty when the edit changed nothing. */
  units: string[];
}

/** Compares an edit with the record as the user saw it. */
export function diff(type: RecordType, current: Fields, patch: Fields, role: string | undefined): Diff {
  const wire: Fields = {};
  const units: string[] = [];
  for (const [field, value] of Object.entries(patch)) {
    if (readOnly.has(field) || value === undefined || sameValue(current[field], value)) continue;
    if (itemWise(type, field, role) && Array.isArray(value)) {
      const before = new Map(((current[field] as ChecklistItem[] | null) ?? []).map((i) => [i.key, i]));
      const changed: ChecklistItem[] = [];
      for (const item of value as ChecklistItem[]) {
        if ((before.get(item.key)?.done ?? false) !== (item.done ?? false)) {
          changed.push({ key: item.key, done: item.done ?? false });
          units.push(`${field}.${item.key}`);
        }
      }
      if (changed.length) wire[field] = changed;
      continue;
    }
    wire[field] = value;
    units.push(field);
  }
  return { wire, units };
}

/**
 * The view of a record: `server` (the server's copy) with the device's pending units taken from
 * `local`. A pending checklist item the server no longer has stays removed: a manager removed it.
 */
export function overlay(server: Fields, local: Fields | undefined, pending: Record<string, number>): Fields {
  const out: Fields = { ...server };
  if (!local) return out;
  for (const unit of Object.keys(pending)) {
    const dot = unit.indexOf('.');
    if (dot < 0) {
      if (unit in local) out[unit] = local[unit];
      continue;
    }
    const field = unit.slice(0, dot);
    const key = unit.slice(dot + 1);
    const mine = ((local[field] as ChecklistItem[] | null) ?? []).find((i) => i.key === key);
    const list = ((out[field] as ChecklistItem[] | null) ?? []).map((i) => ({ ...i }));
    const theirs = list.find((i) => i.key === key);
    if (mine && theirs) theirs.done = mine.done ?? false;
    out[field] = list;
  }
  return out;
}

/** The units a mutation's fields touch (the inverse of diff's `wire`). */
export function unitsOf(type: RecordType, fields: Fields | undefined, role: string | undefined): string[] {
  const units: string[] = [];
  for (const [field, value] of Object.entries(fields ?? {})) {
    if (itemWise(type, field, role) && Array.isArray(value)) {
      for (const item of value as ChecklistItem[]) units.push(`${field}.${item.key}`);
    } else units.push(field);
  }
  return units;
}
