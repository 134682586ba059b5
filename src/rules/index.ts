/** Every rule of the engine, in one list (the visit-cadence rule needs the visits store and is added by module.ts). */
import { DeviceHealthRule } from './device-health.ts';
import { DoorAccessRule } from './door-access.ts';
import { EbikeRule } from './ebike.ts';
import { FallRule, FireRule, SosRule } from './emergency.ts';
import { createHomeRules } from './inactivity.ts';
import { NightExitRule } from './night-exit.ts';
import type { Rule } from './types.ts';

export function createRules(): Rule[] {
  return [
    new SosRule(),
    new FallRule(),
    new FireRule(),
    new NightExitRule(),
    new DoorAccessRule(),
    new EbikeRule(),
    new DeviceHealthRule(),
    // inactivity, not seen, water, gas left on: one shared activity tracker
    ...createHomeRules().rules,
  ];
}
