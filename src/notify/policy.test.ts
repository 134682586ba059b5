import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/load.ts';
import { policyFor } from './policy.ts';

// the policies in force are configuration: these tests read config/default.yaml as the service does
const DEFAULT_POLICIES = loadConfig({ env: {} }).escalation.policies;

describe('escalation policies', () => {
  it('critical, or major in a red household: grid worker and leader at once, director at 5 min, duty officer at 15', () => {
    for (const a of [
      { category: 'resident_safety', severity: 'critical', colour: 'green' },
      { category: 'fire', severity: 'major', colour: 'red' },
    ] as const) {
      const p = policyFor(DEFAULT_POLICIES, a)!;
      expect(p.steps.map((s) => [s.afterMinutes, s.to, s.channel])).toEqual([
        [0, ['grid_worker', 'grid_leader'], 'sms'],
        [5, ['community_director'], 'sms'],
        [15, ['street_duty_officer'], 'sms'],
      ]);
    }
  });

  it('major elsewhere: grid worker, leader after 10 min, director after 30; minor only in the digest', () => {
    const major = policyFor(DEFAULT_POLICIES, { category: 'resident_safety', severity: 'major', colour: 'yellow' })!;
    expect(major.steps.map((s) => [s.afterMinutes, s.to])).toEqual([
      [0, ['grid_worker']],
      [10, ['grid_leader']],
      [30, ['community_director']],
    ]);
    const minor = policyFor(DEFAULT_POLICIES, { category: 'security', severity: 'minor' })!;
    expect(minor.steps.every((s) => s.channel === 'digest')).toBe(true);
  });

  it('maintenance, supplies and visit alerts never wake anyone, whatever their severity', () => {
    for (const category of ['maintenance', 'supplies', 'visit'] as const) {
      const p = policyFor(DEFAULT_POLICIES, { category, severity: 'major' })!;
      expect(p.steps.every((s) => s.channel === 'digest')).toBe(true);
    }
  });
});
