/**
 * Households as the rules see them, held in memory (rules look them up per message) and re-read from the registry
 * periodically and on demand, so a reclassified household or a new lone-elderly flag reaches the rules.
 */
import type { Module } from '../lifecycle/module.ts';
import type { Logger } from '../logger.ts';
import type { Registry } from '../registry/port.ts';
import type { HouseholdDirectory } from './engine.ts';
import type { AwayInterval, HouseholdInfo } from './types.ts';

export class RegistryHouseholds implements HouseholdDirectory, Module {
  readonly name = 'rule-households';
  private map = new Map<string, HouseholdInfo>();
  private timer: NodeJS.Timeout | undefined;

  private away = new Map<string, AwayInterval[]>();

  constructor(
    private readonly registry: Pick<Registry, 'listHouseholds'>,
    private readonly log: Logger,
    private readonly refreshMs = 300_000,
    /** away periods set by staff, in force now or later */
    private readonly loadAway: () => Promise<Map<string, AwayInterval[]>> = async () => new Map(),
  ) {}

  /** Re-reads the away periods only (after staff set or end one). */
  async refreshAway(): Promise<void> {
    this.away = await this.loadAway();
    for (const [id, h] of this.map) this.map.set(id, { ...h, away: this.away.get(id) });
  }

  get(id: string): HouseholdInfo | undefined {
    return this.map.get(id);
  }

  get size(): number {
    return this.map.size;
  }

  async refresh(): Promise<void> {
    this.away = await this.loadAway();
    const next = new Map<string, HouseholdInfo>();
    let cursor: string | undefined;
    do {
      const page = await this.registry.listHouseholds({}, { all: true, gridIds: [] }, { limit: 1000, cursor });
      for (const h of page.items) {
        next.set(h.id, {
          id: h.id,
          colour: h.colour,
          loneElderly: h.loneElderly,
          atRisk: h.atRisk,
          gridId: h.gridId,
          buildingId: h.buildingId,
          unitId: h.unitId,
          communityId: h.communityId,
          away: this.away.get(h.id),
        });
      }
      cursor = page.nextCursor;
    } while (cursor);
    this.map = next;
  }

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => {
      this.refresh().catch((err: unknown) => this.log.warn({ err }, 'rules: reloading households failed'));
    }, this.refreshMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
  }
}
