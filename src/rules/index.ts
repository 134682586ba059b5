/** Every rule of the engine, in one list (the visit-cadence rule needs the visits store and is added by module.ts). */
import type { Rule } from './types.ts';

export function createRules(): Rule[] {
  return [];
}
