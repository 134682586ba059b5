/**
 * The registry of device models. Ingest, the broker, the simulators and the docs look models up here by id; a
 * device's `model` column refers to these ids, so they must never collide (checked at load, before anything runs).
 */
import { ACME_WB200 } from './acme.ts';
import { HIKV_AC100 } from './hikv.ts';
import { NATIVE_MODELS } from './native.ts';
import type { DeviceModel } from './types.ts';
import { VOLT_CB2 } from './volt.ts';
import { ZENMETER_EM3 } from './zenmeter.ts';

export type { DecodeResult, DeviceKind, DeviceModel, Family } from './types.ts';

/** Throws when two models share an id: a silent shadowing would decode one vendor's payloads with another's rules. */
export function assertUniqueModelIds(models: readonly DeviceModel[]): void {
  const seen = new Set<string>();
  const dupes = new Set<string>();
  for (const m of models) {
    if (seen.has(m.id)) dupes.add(m.id);
    seen.add(m.id);
  }
  if (dupes.size > 0) throw new Error(`duplicate device model ids: ${[...dupes].join(', ')}`);
}

export const MODELS: readonly DeviceModel[] = Object.freeze([
  ...NATIVE_MODELS,
  ACME_WB200,
  ZENMETER_EM3,
  HIKV_AC100,
  VOLT_CB2,
]);

assertUniqueModelIds(MODELS);

const byId = new Map(MODELS.map((m) => [m.id, m]));

export function getModel(id: string): DeviceModel | undefined {
  return byId.get(id);
}

export function modelIds(): string[] {
  return MODELS.map((m) => m.id);
}
