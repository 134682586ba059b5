/**
 * Who an escalation step reaches: roles relative to the alert's place (its grid's grid workers and leader, the
 * building leaders of that grid, the community's director, the street's duty officer), the household's emergency
 * contacts, the keepers of devices (the community's IT admins), the keeper of a supply depot, or named staff. Staff
 * are read from the registry and cached briefly; disabled accounts and accounts without a phone are never chosen.
 *
 * With a duty roster (src/notify/roster.ts), a staff recipient who is off duty at that moment, for that role and the
 * alert's grid, is replaced by their substitute, following the chain up to 3 hops when the substitute is off too and
 * passing over disabled or phone-less substitutes. When nobody usable is found the original person is kept and marked
 * `offDuty`: an off-duty person is better than nobody, so the roster never empties a list.
 */
import type { Alert } from '../alerts/types.ts';
import { type Logger, maskName } from '../logger.ts';
import type { Registry, Staff } from '../registry/port.ts';
import type { Role } from '../registry/types.ts';
import type { RecipientRole } from './policy.ts';

export interface Recipient {
  /** E.164 */
  phone: string;
  staffId?: string;
  /** the policy entry that chose them */
  as: RecipientRole | `staff:${string}`;
  /** masked, for message bodies and logs */
  displayName: string;
  /** the off-duty staff member this recipient stands in for */
  substituteFor?: string;
  /** kept although off duty: the roster named nobody reachable in their place */
  offDuty?: true;
}

/** What the resolver needs of the duty roster (DutyRoster in src/notify/roster.ts). */
export interface DutyLookup {
  /** The substitute of an off-duty staff member, or undefined when they are on duty. */
  substituteFor(staffId: string, query: { role?: Role; gridId?: string; at?: number }): Promise<string | undefined>;
}

/** Who may be texted about a drill alert: the participants of the drill it belongs to (issue 6). */
export interface DrillAudience {
  drillId: string;
  staffIds: ReadonlySet<string>;
  /** the scenario names residents' emergency contacts as participants */
  emergencyContacts: boolean;
}

/** The alert as the resolver sees it: where it is, and for drills which alert it is. */
export type RecipientAlert = Pick<Alert, 'householdId' | 'gridId' | 'communityId'> &
  Partial<Pick<Alert, 'id' | 'drill' | 'deviceId' | 'buildingId' | 'areaId' | 'evidence'>>;

export interface RecipientResolverOptions {
  roster?: DutyLookup;
  /** substitutions (debug) and off-duty people kept or an unreadable roster (warn); ids only, never phones */
  log?: Pick<Logger, 'debug' | 'warn'>;
  /**
   * Drill alerts only: the participants of the running drill the alert belongs to, or undefined when no drill is
   * running for it. Recipients outside the audience are dropped (residents' emergency contacts too, unless the
   * scenario names them); with no drill running nobody is texted. Without this hook drill alerts are resolved like
   * real ones.
   */
  drillAudience?: (alert: RecipientAlert) => DrillAudience | undefined | Promise<DrillAudience | undefined>;
  /**
   * `depot_keeper`: the staff ids of the keepers of the depot the alert is about (src/supplies). Without it, or
   * when it names nobody, depot keepers covering the alert's community are chosen.
   */
  depotKeepers?: (alert: RecipientAlert) => readonly string[];
}

/** How far a chain of substitutes is followed (A off → B off → C off → D). */
export const MAX_SUBSTITUTE_HOPS = 3;

const ROLE_OF: Partial<Record<RecipientRole, Role>> = {
  grid_worker: 'grid_worker',
  grid_leader: 'grid_leader',
  building_leader: 'building_leader',
  community_director: 'community_director',
  street_duty_officer: 'street_duty_officer',
  device_keeper: 'admin',
};

export class RecipientResolver {
  private staff: Staff[] = [];
  private loadedAt = -Infinity;

  constructor(
    private readonly registry: Pick<Registry, 'listStaff' | 'getHousehold' | 'scopeOf'>,
    private readonly now: () => number = Date.now,
    private readonly cacheMs = 60_000,
    private readonly opts: RecipientResolverOptions = {},
  ) {}

  /** Everyone a step's `to` list reaches for this alert, each phone once, in the order of the list. */
  async resolve(to: readonly string[], alert: RecipientAlert): Promise<Recipient[]> {
    await this.loadStaff();
    const at = this.now();
    const out: Recipient[] = [];
    const seen = new Set<string>();
    const add = (r: Recipient) => {
      if (!r.phone || seen.has(r.phone)) return;
      seen.add(r.phone);
      out.push(r);
    };
    for (const entry of to) {
      if (entry.startsWith('staff:')) {
        const s = this.staff.find((x) => x.id === entry.slice(6) && !x.disabled);
        if (s) add(await this.onDuty(s, entry as `staff:${string}`, undefined, alert.gridId, at));
        continue;
      }
      const as = entry as RecipientRole;
      if (as === 'emergency_contacts') {
        if (!alert.householdId) continue;
        const h = await this.registry.getHousehold(alert.householdId);
        for (const c of h?.emergencyContacts ?? []) add({ phone: c.phone, as, displayName: maskName(c.name) });
        continue;
      }
      if (as === 'depot_keeper') {
        const ids = this.opts.depotKeepers?.(alert) ?? [];
        const keepers =
          ids.length > 0
            ? this.staff.filter((s) => ids.includes(s.id))
            : this.staff.filter(
                (s) =>
                  s.roles.includes('depot_keeper') &&
                  alert.communityId !== undefined &&
                  s.coverage.communityIds.includes(alert.communityId),
              );
        for (const s of keepers) if (!s.disabled) add(await this.onDuty(s, as, 'depot_keeper', alert.gridId, at));
        continue;
      }
      const role = ROLE_OF[as];
      if (!role) continue;
      for (const s of this.staff) {
        if (s.disabled || !s.roles.includes(role)) continue;
        if (!(await this.covers(s, as, alert))) continue;
        add(await this.onDuty(s, as, role, alert.gridId, at));
      }
    }
    return alert.drill && this.opts.drillAudience ? this.drillOnly(out, alert) : out;
  }

  /** A drill alert's recipients: only the drill's participants, nobody when no drill is running for it. */
  private async drillOnly(out: Recipient[], alert: RecipientAlert): Promise<Recipient[]> {
    const audience = await this.opts.drillAudience!(alert);
    if (!audience) {
      this.opts.log?.warn(
        { event: 'drill_alert_without_drill', alertId: alert.id, dropped: out.length },
        'drill alert with no drill running for it: nobody is texted',
      );
      return [];
    }
    const kept = out.filter((r) =>
      r.staffId !== undefined
        ? audience.staffIds.has(r.staffId)
        : r.as === 'emergency_contacts' && audience.emergencyContacts,
    );
    if (kept.length < out.length) {
      this.opts.log?.debug(
        {
          event: 'drill_recipients_dropped',
          alertId: alert.id,
          drillId: audience.drillId,
          dropped: out.length - kept.length,
        },
        'drill alert: recipients who are not participants are not texted',
      );
    }
    return kept;
  }

  /** Forget the cached staff list (after an account changed). */
  invalidate(): void {
    this.loadedAt = -Infinity;
  }

  private async covers(s: Staff, as: RecipientRole, alert: Pick<Alert, 'gridId' | 'communityId'>): Promise<boolean> {
    const scope = this.registry.scopeOf(s);
    // community- and street-wide roles (and admins) cover everything their scope covers
    if (as === 'community_director' || as === 'street_duty_officer' || as === 'device_keeper') {
      if (scope.all) {
        if (as === 'community_director' && alert.communityId && s.coverage.communityIds.length > 0) {
          return s.coverage.communityIds.includes(alert.communityId);
        }
        return true;
      }
    }
    return alert.gridId !== undefined && (scope.all || scope.gridIds.includes(alert.gridId));
  }

  /** `s`, or who stands in for them at `at` (see the module comment). */
  private async onDuty(
    s: Staff,
    as: Recipient['as'],
    role: Role | undefined,
    gridId: string | undefined,
    at: number,
  ): Promise<Recipient> {
    const roster = this.opts.roster;
    if (!roster) return this.fromStaff(s, as);
    const query = { role, gridId, at };
    const seen = new Set<string>([s.id]);
    let current = s;
    try {
      for (let hops = 0; ; hops++) {
        const substituteId = await roster.substituteFor(current.id, query);
        if (substituteId === undefined) {
          if (current === s) return this.fromStaff(s, as);
          if (!current.disabled && current.phone) {
            this.opts.log?.debug(
              { event: 'recipient_substituted', staffId: s.id, substituteId: current.id, role, gridId, hops },
              'off duty: the substitute is told instead',
            );
            return { ...this.fromStaff(current, as), substituteFor: s.id };
          }
          break; // a disabled or phone-less substitute with nobody after them
        }
        if (hops >= MAX_SUBSTITUTE_HOPS || seen.has(substituteId)) break;
        seen.add(substituteId);
        const next = await this.staffById(substituteId);
        if (!next) break;
        current = next;
      }
    } catch (err) {
      // the roster could not be read: tell the person the policy names rather than nobody
      this.opts.log?.warn({ err, staffId: s.id }, 'duty roster unreadable; recipient kept without checking duty');
      return this.fromStaff(s, as);
    }
    this.opts.log?.warn(
      { event: 'recipient_off_duty_kept', staffId: s.id, role, gridId },
      'off duty and no reachable substitute: told anyway',
    );
    return { ...this.fromStaff(s, as), offDuty: true };
  }

  /** A staff member by id; reloads the list once when they are not in it (an account created moments ago). */
  private async staffById(id: string): Promise<Staff | undefined> {
    const found = this.staff.find((x) => x.id === id);
    if (found) return found;
    this.invalidate();
    await this.loadStaff();
    return this.staff.find((x) => x.id === id);
  }

  private fromStaff(s: Staff, as: Recipient['as']): Recipient {
    return { phone: s.phone, staffId: s.id, as, displayName: maskName(s.name) };
  }

  private async loadStaff(): Promise<void> {
    if (this.now() - this.loadedAt < this.cacheMs) return;
    const all: Staff[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.registry.listStaff({ limit: 1000, cursor });
      all.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    this.staff = all;
    this.loadedAt = this.now();
  }
}
