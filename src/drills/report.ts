/**
 * The after-action report (HSEEP AAR): everything that happened with its drill time, each objective met or missed
 * with the measured value against its target, response times per participant (notified → acknowledged → task
 * done), the SMS that failed, the evaluators' notes and their P / S / M / U rating per objective. One JSON model,
 * rendered as CSV and as a printable, self-contained HTML page (Chinese by default, English on request).
 *
 * Every time is drill time (`t`, seconds since the start, pauses excluded), so a paused drill is not judged on the
 * minutes it stood still. A running drill's report is provisional: a target whose time has not run out yet is
 * `pending`, not missed.
 */
import type { StoredAlert } from '../alerts/service.ts';
import { maskPhone } from '../logger.ts';
import type { Notification } from '../notify/store.ts';
import { alertTitle, type Lang } from '../notify/templates.ts';
import { elapsedAt } from './time.ts';
import type { Objective, Scenario, Target } from './scenario.ts';
import type { DrillSummary } from './schemas.ts';
import type { DrillEvent, DrillNote, DrillRating, DrillRecord, DrillTask, Participant } from './store.ts';

export interface Bilingual {
  zh: string;
  en: string;
}

export interface ReportInput {
  rec: DrillRecord;
  summary: DrillSummary;
  events: readonly DrillEvent[];
  tasks: readonly DrillTask[];
  notes: readonly DrillNote[];
  ratings: readonly DrillRating[];
  alerts: readonly { alert: StoredAlert; injectId?: string }[];
  notifications: readonly Notification[];
  realAlerts: readonly StoredAlert[];
  /** staff by id (masked names), for people who are not participants (an admin who ended the drill) */
  staff: ReadonlyMap<string, { username: string; name: string }>;
  now: number;
  /** the community's IANA time zone, for the wall times the page shows (default Asia/Shanghai) */
  timezone?: string;
}

export interface TimelineItem {
  /** drill time, s */
  t: number;
  at: string;
  kind: string;
  ref?: string;
  by?: string;
  byName?: string;
  text: Bilingual;
}

export type ObjectiveResultKind = 'met' | 'missed' | 'pending';

export interface ObjectiveResult {
  id: string;
  text: Bilingual;
  target: Target;
  targetS: number;
  measuredS?: number;
  result: ObjectiveResultKind;
  statement: Bilingual;
  rating?: { rating: string; note?: string; by: string; byName?: string; at: string };
}

export interface ParticipantResult {
  staffId: string;
  username: string;
  name: string;
  as: string[];
  notifiedS?: number;
  acknowledgedS?: number;
  /** from the first SMS about one of the drill's alerts to the first acknowledgement */
  responseS?: number;
  firstTaskDoneS?: number;
  tasksDone: { taskId: string; t: number }[];
  sms: number;
}

export interface DrillReport {
  drill: DrillSummary & { description: Bilingual; scope: Scenario['scope'] };
  timezone: string;
  generatedAt: string;
  /** false while the drill runs: the figures may still change */
  final: boolean;
  durationS: number;
  objectives: ObjectiveResult[];
  timeline: TimelineItem[];
  participants: ParticipantResult[];
  alerts: {
    id: string;
    type: string;
    severity: string;
    status: string;
    injectId?: string;
    openedS: number;
    acknowledgedS?: number;
    ackAfterS?: number;
    acknowledgedBy?: string;
    resolvedS?: number;
    outcome?: string;
  }[];
  tasks: {
    id: string;
    title: Bilingual;
    status: 'pending' | 'open' | 'done';
    issuedS?: number;
    doneS?: number;
    tookS?: number;
    doneBy?: string;
    households: number;
  }[];
  notifications: { total: number; sent: number; delivered: number; failed: number; held: number };
  failedNotifications: {
    id: string;
    t: number;
    alertId: string;
    role?: string;
    staffId?: string;
    recipient: string;
    status: string;
    errorCode?: string;
  }[];
  notes: { t: number; at: string; by: string; byName?: string; text: string }[];
  realAlerts: { id: string; type: string; severity: string; status: string; openedAt: string; gridId?: string }[];
}

const SENT_STATES = ['queued', 'sent', 'delivered', 'undelivered'];
const FAILED_STATES = ['failed', 'undelivered'];

/** 90 → "1 min 30 s" / "1分30秒"; 120 → "2 min" / "2分钟". */
export function formatDuration(seconds: number, lang: Lang = 'en'): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (lang === 'zh') {
    if (s === 0) return '0秒';
    return `${h ? `${h}小时` : ''}${m ? `${m}分${sec ? '' : '钟'}` : ''}${sec ? `${sec}秒` : ''}`;
  }
  const parts = [h && `${h} h`, m && `${m} min`, sec && `${sec} s`].filter(Boolean);
  return parts.length ? parts.join(' ') : '0 s';
}

const round1 = (ms: number) => Math.round(ms / 100) / 10;

export function buildReport(input: ReportInput): DrillReport {
  const { rec } = input;
  const segs = rec.state.segments;
  const tOf = (ts: number) => round1(elapsedAt(segs, ts));
  const at = (ts: number) => new Date(ts).toISOString();
  const final = rec.status === 'ended';
  const nowT = tOf(rec.endedAt ?? input.now);
  const participantsById = new Map(rec.participants.map((p) => [p.staffId, p]));
  const who = (id: string | undefined) =>
    id ? (participantsById.get(id)?.name ?? input.staff.get(id)?.name ?? undefined) : undefined;
  const injectTitle = (id: string) => rec.scenario.injects.find((i) => i.id === id)?.title ?? { zh: id, en: id };

  // ---------------------------------------------------------------- alerts
  const alertRows = input.alerts
    .map(({ alert, injectId }) => {
      const opened = Date.parse(alert.firstSeen);
      const ack = handledAt(alert);
      const resolved = alert.resolvedAt ? Date.parse(alert.resolvedAt) : undefined;
      const row: DrillReport['alerts'][number] = {
        id: alert.id,
        type: alert.type,
        severity: alert.severity,
        status: alert.status,
        openedS: tOf(opened),
      };
      if (injectId) row.injectId = injectId;
      if (ack) {
        row.acknowledgedS = tOf(ack.ts);
        row.ackAfterS = round1(elapsedAt(segs, ack.ts) - elapsedAt(segs, opened));
        row.acknowledgedBy = ack.by;
      }
      if (resolved !== undefined) row.resolvedS = tOf(resolved);
      if (alert.outcome) row.outcome = alert.outcome;
      return row;
    })
    .sort((a, b) => a.openedS - b.openedS);

  // ---------------------------------------------------------------- tasks
  const taskInjects = rec.scenario.injects.filter((i) => i.action.kind === 'task');
  const taskRows: DrillReport['tasks'] = taskInjects.map((inj) => {
    const t = input.tasks.find((x) => x.taskId === inj.id);
    const row: DrillReport['tasks'][number] = {
      id: inj.id,
      title: inj.title,
      status: t ? t.status : 'pending',
      households: t?.targets.households.length ?? 0,
    };
    if (t) row.issuedS = tOf(t.issuedAt);
    if (t?.doneAt !== undefined) {
      row.doneS = tOf(t.doneAt);
      row.tookS = round1(elapsedAt(segs, t.doneAt) - elapsedAt(segs, t.issuedAt));
    }
    if (t?.doneBy) row.doneBy = t.doneBy;
    return row;
  });

  // ---------------------------------------------------------------- objectives
  const objectives = rec.scenario.objectives.map((o) =>
    objectiveResult(o, { alertRows, taskRows, rec, final, nowT, ratings: input.ratings, who, at }),
  );

  // ---------------------------------------------------------------- timeline
  const timeline: TimelineItem[] = [];
  const push = (ts: number, kind: string, text: Bilingual, extra: Partial<TimelineItem> = {}) => {
    const item: TimelineItem = { t: tOf(ts), at: at(ts), kind, text, ...extra };
    if (item.by && !item.byName) {
      const n = who(item.by);
      if (n) item.byName = n;
    }
    timeline.push(item);
  };
  for (const e of input.events) {
    const ref = e.ref;
    switch (e.kind) {
      case 'started':
        push(
          e.ts,
          e.kind,
          {
            zh: `演练开始（${rec.participants.length}名参与者）`,
            en: `Drill started (${rec.participants.length} participants)`,
          },
          { by: e.by },
        );
        break;
      case 'paused':
        push(e.ts, e.kind, { zh: '演练暂停', en: 'Drill paused' }, { by: e.by });
        break;
      case 'resumed':
        push(e.ts, e.kind, { zh: '演练继续', en: 'Drill resumed' }, { by: e.by });
        break;
      case 'restarted':
        push(e.ts, e.kind, { zh: '服务重启后演练恢复', en: 'Drill resumed after a service restart' });
        break;
      case 'ended':
        push(e.ts, e.kind, { zh: '演练结束', en: 'Drill ended' }, { by: e.by });
        break;
      case 'inject_fired': {
        const title = injectTitle(ref ?? '');
        const err = typeof e.data?.error === 'string' ? e.data.error : undefined;
        const manual = e.data?.manual === true;
        push(
          e.ts,
          e.kind,
          {
            zh: `注入：${title.zh}${manual ? '（手动）' : ''}${err ? `（失败：${err}）` : ''}`,
            en: `Inject: ${title.en}${manual ? ' (manual)' : ''}${err ? ` (failed: ${err})` : ''}`,
          },
          { ref, by: e.by === 'schedule' ? undefined : e.by },
        );
        break;
      }
      case 'message': {
        const text = (e.data?.text as Bilingual | undefined) ?? { zh: '', en: '' };
        push(e.ts, e.kind, { zh: `消息：${text.zh}`, en: `Message: ${text.en}` }, { ref });
        break;
      }
      case 'task_done': {
        const title = injectTitle(ref ?? '');
        push(e.ts, e.kind, { zh: `任务完成：${title.zh}`, en: `Task done: ${title.en}` }, { ref, by: e.by });
        break;
      }
      case 'alert_opened': {
        const type = String(e.data?.type ?? '');
        push(e.ts, e.kind, { zh: `告警：${alertTitle(type, 'zh')}`, en: `Alert: ${alertTitle(type, 'en')}` }, { ref });
        break;
      }
      case 'alert_acknowledged':
      case 'alert_resolved':
      case 'alert_cancelled': {
        const type = String(e.data?.type ?? '');
        const verb = {
          alert_acknowledged: { zh: '已确认', en: 'acknowledged' },
          alert_resolved: { zh: '已处理', en: 'resolved' },
          alert_cancelled: { zh: '已取消', en: 'cancelled' },
        }[e.kind];
        const by = e.by && !e.by.startsWith('rule:') && e.by !== 'system' ? e.by : undefined;
        push(
          e.ts,
          e.kind,
          { zh: `告警${verb.zh}：${alertTitle(type, 'zh')}`, en: `Alert ${verb.en}: ${alertTitle(type, 'en')}` },
          { ref, by },
        );
        break;
      }
      case 'note':
        break; // from the notes themselves, with their text
      case 'rating':
        push(
          e.ts,
          e.kind,
          { zh: `评估评级 ${ref}：${String(e.data?.rating)}`, en: `Rating of ${ref}: ${String(e.data?.rating)}` },
          { ref, by: e.by },
        );
        break;
      default:
        push(e.ts, e.kind, { zh: e.kind, en: e.kind }, { ref, by: e.by });
    }
  }
  for (const n of input.notifications) {
    const ts = sentAt(n) ?? Date.parse(n.createdAt);
    const failed = FAILED_STATES.includes(n.status);
    const text = (lang: Lang) => {
      const role = roleWords(n.role, lang);
      const name = who(n.staffId) ?? role;
      const code = n.errorCode ? ` ${n.errorCode}` : '';
      return lang === 'zh'
        ? `短信 → ${name}（${role}）：${word(n.status, lang)}${code}`
        : `SMS → ${name} (${role}): ${word(n.status, lang)}${code}`;
    };
    push(ts, failed ? 'sms_failed' : 'sms', { zh: text('zh'), en: text('en') }, { ref: n.id });
  }
  for (const note of input.notes) {
    push(note.ts, 'note', { zh: `评估记录：${note.text}`, en: `Note: ${note.text}` }, { by: note.by });
  }
  timeline.sort((a, b) => a.t - b.t || a.at.localeCompare(b.at));

  // ---------------------------------------------------------------- participants
  const participants = rec.participants.map((p) => participantResult(p, input, tOf));

  const notifications = {
    total: input.notifications.length,
    sent: input.notifications.filter((n) => SENT_STATES.includes(n.status)).length,
    delivered: input.notifications.filter((n) => n.status === 'delivered').length,
    failed: input.notifications.filter((n) => FAILED_STATES.includes(n.status)).length,
    held: input.notifications.filter((n) => n.status === 'bundled' || n.status === 'capped').length,
  };

  return {
    drill: { ...input.summary, description: rec.scenario.description, scope: rec.scenario.scope },
    timezone: input.timezone ?? 'Asia/Shanghai',
    generatedAt: at(input.now),
    final,
    durationS: nowT,
    objectives,
    timeline,
    participants,
    alerts: alertRows,
    tasks: taskRows,
    notifications,
    failedNotifications: input.notifications
      .filter((n) => FAILED_STATES.includes(n.status))
      .map((n) => ({
        id: n.id,
        t: tOf(Date.parse(n.updatedAt)),
        alertId: n.alertId,
        role: n.role,
        staffId: n.staffId,
        recipient: maskPhone(n.recipient),
        status: n.status,
        errorCode: n.errorCode,
      })),
    notes: input.notes.map((n) => ({ t: tOf(n.ts), at: at(n.ts), by: n.by, byName: who(n.by), text: n.text })),
    realAlerts: input.realAlerts.map((a) => ({
      id: a.id,
      type: a.type,
      severity: a.severity,
      status: a.status,
      openedAt: a.firstSeen,
      gridId: a.gridId,
    })),
  };
}

/** When someone responded to an alert: acknowledged, or resolved by a person (a cancellation at the end is not). */
function handledAt(alert: StoredAlert): { ts: number; by: string } | undefined {
  const entry = alert.timeline.find(
    (e) => e.action === 'acknowledged' || (e.action === 'resolved' && !e.by.startsWith('rule:') && e.by !== 'system'),
  );
  return entry ? { ts: entry.ts, by: entry.by } : undefined;
}

function sentAt(n: Notification): number | undefined {
  const h = n.statusHistory.find((x) => SENT_STATES.includes(x.status));
  return h ? Date.parse(h.at) : undefined;
}

function participantResult(p: Participant, input: ReportInput, tOf: (ts: number) => number): ParticipantResult {
  const mine = input.notifications.filter((n) => n.staffId === p.staffId && SENT_STATES.includes(n.status));
  // notified: the first SMS about one of the drill's alerts (the drill's messages are not alerts to answer)
  const notified = mine
    .filter((n) => !n.alertId.startsWith('drill:'))
    .map((n) => sentAt(n) ?? Date.parse(n.createdAt))
    .sort((a, b) => a - b)[0];
  const acks = input.alerts
    .flatMap(({ alert }) => alert.timeline.filter((e) => e.action === 'acknowledged' && e.by === p.staffId))
    .map((e) => e.ts)
    .sort((a, b) => a - b);
  const tasksDone = input.tasks
    .filter((t) => t.doneBy === p.staffId && t.doneAt !== undefined)
    .map((t) => ({ taskId: t.taskId, t: tOf(t.doneAt!) }))
    .sort((a, b) => a.t - b.t);
  const r: ParticipantResult = {
    staffId: p.staffId,
    username: p.username,
    name: p.name,
    as: p.as,
    tasksDone,
    sms: mine.length,
  };
  if (notified !== undefined) r.notifiedS = tOf(notified);
  if (acks[0] !== undefined) r.acknowledgedS = tOf(acks[0]);
  if (r.notifiedS !== undefined && r.acknowledgedS !== undefined) {
    r.responseS = Math.round((r.acknowledgedS - r.notifiedS) * 10) / 10;
  }
  if (tasksDone[0]) r.firstTaskDoneS = tasksDone[0].t;
  return r;
}

interface ObjectiveContext {
  alertRows: DrillReport['alerts'];
  taskRows: DrillReport['tasks'];
  rec: DrillRecord;
  final: boolean;
  nowT: number;
  ratings: readonly DrillRating[];
  who: (id: string | undefined) => string | undefined;
  at: (ts: number) => string;
}

const RESULT_TEXT: Record<ObjectiveResultKind, Bilingual> = {
  met: { zh: '达成', en: 'met' },
  missed: { zh: '未达成', en: 'missed' },
  pending: { zh: '进行中', en: 'pending' },
};

function objectiveResult(o: Objective, c: ObjectiveContext): ObjectiveResult {
  const target = o.target;
  const targetS = target.seconds;
  /** each item: seconds it took, or undefined (not yet); `since`: drill time its clock started */
  const items: { took?: number; since?: number; closed?: boolean }[] = [];
  /** an alert closed without anyone answering it can no longer be answered */
  const closed = (a: DrillReport['alerts'][number]) =>
    a.acknowledgedS === undefined && (a.status === 'resolved' || a.status === 'cancelled');
  let what: Bilingual;
  let none: Bilingual = { zh: '无', en: 'none' };
  switch (target.kind) {
    case 'first_ack_within': {
      what = { zh: '首次确认用时', en: 'first acknowledgement' };
      none = { zh: '尚无告警', en: 'no alert yet' };
      const first = c.alertRows.filter((a) => !target.alertTypes || target.alertTypes.includes(a.type))[0];
      if (first) items.push({ took: first.ackAfterS, since: first.openedS, closed: closed(first) });
      break;
    }
    case 'all_alerts_acked_within': {
      what = { zh: '全部告警确认（最慢）', en: 'all alerts acknowledged, slowest' };
      none = { zh: '尚无告警', en: 'no alert yet' };
      for (const a of c.alertRows.filter((x) => !target.alertTypes || target.alertTypes.includes(x.type))) {
        items.push({ took: a.ackAfterS, since: a.openedS, closed: closed(a) });
      }
      break;
    }
    case 'tasks_done_within': {
      what = { zh: '任务完成（最慢）', en: 'tasks done, slowest' };
      for (const id of target.taskIds) {
        const t = c.taskRows.find((x) => x.id === id);
        const fromStart = target.from === 'start';
        if (!t || t.issuedS === undefined) items.push({ since: fromStart ? 0 : undefined });
        else items.push({ took: fromStart ? t.doneS : t.tookS, since: fromStart ? 0 : t.issuedS });
      }
      break;
    }
    case 'injects_handled': {
      what = { zh: '注入处置（最慢）', en: 'injects handled, slowest' };
      for (const id of target.injectIds) {
        const fired = c.rec.state.fired[id];
        const inj = c.rec.scenario.injects.find((i) => i.id === id);
        if (!fired || !inj) {
          items.push({});
          continue;
        }
        const firedS = Math.round(elapsedAt(c.rec.state.segments, fired.at) / 100) / 10;
        if (inj.action.kind === 'task') {
          const t = c.taskRows.find((x) => x.id === id);
          items.push({ took: t?.doneS !== undefined ? round1((t.doneS - firedS) * 1000) : undefined, since: firedS });
        } else {
          const acks = c.alertRows
            .filter((a) => a.injectId === id && a.acknowledgedS !== undefined)
            .map((a) => a.acknowledgedS!);
          const first = acks.sort((a, b) => a - b)[0];
          items.push({ took: first !== undefined ? round1((first - firedS) * 1000) : undefined, since: firedS });
        }
      }
      break;
    }
  }
  let result: ObjectiveResultKind;
  let measuredS: number | undefined;
  if (items.length === 0) {
    result = c.final ? 'missed' : 'pending';
  } else if (items.every((i) => i.took !== undefined)) {
    measuredS = Math.max(...items.map((i) => i.took!));
    result = measuredS <= targetS ? 'met' : 'missed';
  } else {
    // something is still not done: missed once its time is out (or the drill is over), pending before
    const outOfTime = items.some(
      (i) => i.took === undefined && (i.closed || (i.since !== undefined && c.nowT - i.since > targetS)),
    );
    const late = items.some((i) => i.took !== undefined && i.took > targetS);
    result = c.final || outOfTime || late ? 'missed' : 'pending';
  }
  const measured: Bilingual =
    measuredS !== undefined
      ? { zh: formatDuration(measuredS, 'zh'), en: formatDuration(measuredS, 'en') }
      : items.length === 0
        ? none
        : { zh: '未完成', en: 'not done' };
  const statement: Bilingual = {
    zh: `${what.zh}${measured.zh}，目标${formatDuration(targetS, 'zh')}：${RESULT_TEXT[result].zh}`,
    en: `${what.en} ${measured.en}, target ${formatDuration(targetS, 'en')}: ${RESULT_TEXT[result].en}`,
  };
  const out: ObjectiveResult = { id: o.id, text: o.text, target, targetS, result, statement };
  if (measuredS !== undefined) out.measuredS = measuredS;
  const r = c.ratings.find((x) => x.objectiveId === o.id);
  if (r) {
    out.rating = { rating: r.rating, by: r.by, at: c.at(r.ts) };
    if (r.note) out.rating.note = r.note;
    const n = c.who(r.by);
    if (n) out.rating.byName = n;
  }
  return out;
}

// ------------------------------------------------------------------ CSV

function csvCell(v: unknown): string {
  if (v === undefined || v === null) return '';
  const s = String(v);
  // a leading = + - @ would be a formula in a spreadsheet: defuse it
  const safe = /^[=+\-@]/.test(s) && !/^-?\d+(\.\d+)?$/.test(s) ? `'${s}` : s;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** One CSV (RFC 4180, UTF-8 with a BOM for spreadsheets): a `section` column tells the row kinds apart. */
export function reportCsv(r: DrillReport, lang: Lang = 'zh'): string {
  const header = ['section', 't_s', 'time', 'kind', 'ref', 'who', 'text', 'measured_s', 'target_s', 'result', 'rating'];
  const rows: unknown[][] = [header];
  for (const o of r.objectives) {
    rows.push([
      'objective',
      '',
      '',
      o.target.kind,
      o.id,
      '',
      `${o.text[lang]} — ${o.statement[lang]}`,
      o.measuredS,
      o.targetS,
      o.result,
      o.rating ? `${o.rating.rating}${o.rating.note ? ` ${o.rating.note}` : ''}` : '',
    ]);
  }
  for (const t of r.timeline) rows.push(['timeline', t.t, t.at, t.kind, t.ref, t.byName ?? t.by, t.text[lang]]);
  for (const p of r.participants) {
    rows.push([
      'participant',
      '',
      '',
      p.as.join(' '),
      p.username,
      p.name,
      lang === 'zh'
        ? `通知${p.notifiedS ?? '-'}s 确认${p.acknowledgedS ?? '-'}s 首个任务${p.firstTaskDoneS ?? '-'}s`
        : `notified ${p.notifiedS ?? '-'} s, acknowledged ${p.acknowledgedS ?? '-'} s, first task ${p.firstTaskDoneS ?? '-'} s`,
      p.responseS,
    ]);
  }
  for (const f of r.failedNotifications) {
    rows.push(['sms_failed', f.t, '', f.status, f.alertId, f.role, `${f.recipient} ${f.errorCode ?? ''}`.trim()]);
  }
  for (const n of r.notes) rows.push(['note', n.t, n.at, 'note', '', n.byName ?? n.by, n.text]);
  return `\uFEFF${rows.map((row) => row.map(csvCell).join(',')).join('\r\n')}\r\n`;
}

// ------------------------------------------------------------------ HTML

function esc(s: unknown): string {
  return String(s ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const L = {
  zh: {
    title: '演练评估报告',
    colon: '：',
    issued: '下达',
    done: '完成',
    took: '用时',
    provisional: '演练进行中：以下数据为临时结果',
    type: '类型',
    started: '开始',
    ended: '结束',
    duration: '演练时长',
    status: '状态',
    objectives: '目标',
    objective: '目标',
    result: '结果',
    rating: '评级（P/S/M/U）',
    timeline: '时间线',
    t: '演练时间',
    event: '事件',
    who: '人员',
    participants: '参与者与响应时间',
    name: '姓名',
    role: '角色',
    notified: '收到通知',
    acked: '确认',
    response: '响应用时',
    task: '首个任务完成',
    alerts: '演练告警',
    alertType: '告警',
    opened: '发生',
    tasks: '任务',
    failed: '发送失败的短信',
    notes: '评估记录',
    real: '演练期间的真实告警（已按正常流程处理）',
    none: '无',
    sms: '短信',
    statuses: { running: '进行中', paused: '已暂停', ended: '已结束' } as Record<string, string>,
    taskStatus: { pending: '未下达', open: '进行中', done: '已完成' } as Record<string, string>,
    footer: 'GridWatch 演练报告 · 所有时间为演练时间（不含暂停）',
  },
  en: {
    title: 'After-action report',
    colon: ': ',
    issued: 'Issued',
    done: 'Done',
    took: 'Took',
    provisional: 'The drill is still running: these figures are provisional',
    type: 'Type',
    started: 'Started',
    ended: 'Ended',
    duration: 'Drill time',
    status: 'Status',
    objectives: 'Objectives',
    objective: 'Objective',
    result: 'Result',
    rating: 'Rating (P/S/M/U)',
    timeline: 'Timeline',
    t: 'Drill time',
    event: 'Event',
    who: 'Who',
    participants: 'Participants and response times',
    name: 'Name',
    role: 'Role',
    notified: 'Notified',
    acked: 'Acknowledged',
    response: 'Response',
    task: 'First task done',
    alerts: 'Drill alerts',
    alertType: 'Alert',
    opened: 'Opened',
    tasks: 'Tasks',
    failed: 'SMS that failed',
    notes: 'Evaluator notes',
    real: 'Real alerts during the drill (handled normally)',
    none: 'none',
    sms: 'SMS',
    statuses: { running: 'running', paused: 'paused', ended: 'ended' } as Record<string, string>,
    taskStatus: { pending: 'not issued', open: 'open', done: 'done' } as Record<string, string>,
    footer: 'GridWatch drill report · all times are drill time (pauses excluded)',
  },
} as const;

/** Words the page shows for codes: roles, alert and SMS statuses. */
const WORDS_ZH: Record<string, string> = {
  grid_worker: '网格员',
  grid_leader: '网格长',
  building_leader: '楼栋长',
  unit_leader: '单元长',
  committee_member: '居委会委员',
  party_volunteer: '党员志愿者',
  community_director: '社区书记/主任',
  street_duty_officer: '街道值班员',
  depot_keeper: '物资管理员',
  drill_controller: '演练导调',
  evaluator: '评估员',
  admin: '管理员',
  emergency_contacts: '紧急联系人',
  drill_message: '演练消息',
  open: '未处理',
  acknowledged: '已确认',
  resolved: '已处理',
  cancelled: '已取消',
  pending: '待发送',
  queued: '已提交',
  sent: '已发送',
  delivered: '已送达',
  undelivered: '未送达',
  failed: '发送失败',
  capped: '被限发',
  bundled: '合并待发',
};
const WORDS_EN: Record<string, string> = {
  community_director: 'community director',
  drill_controller: 'drill controller',
  emergency_contacts: 'emergency contacts',
  drill_message: 'drill message',
};

/** A code in words (zh), or readable (en): `grid_worker` → 网格员 / grid worker. */
export function word(code: string, lang: Lang): string {
  if (lang === 'zh') return WORDS_ZH[code] ?? code;
  return WORDS_EN[code] ?? code.replace(/_/g, ' ');
}

/** Roles as recorded on a notification may carry a note: `grid_worker (substitute for st-x)`. */
function roleWords(role: string | undefined, lang: Lang): string {
  if (!role) return '';
  const m = /^([a-z_]+)(.*)$/.exec(role);
  return m ? `${word(m[1]!, lang)}${m[2]}` : role;
}

/** An instant in the community's time zone: 2026-03-01 14:05:09. */
function wallTime(isoText: string | undefined, timeZone: string): string {
  if (!isoText) return '–';
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(new Date(isoText));
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? '';
  return `${get('year')}-${get('month')}-${get('day')} ${get('hour')}:${get('minute')}:${get('second')}`;
}

/** mm:ss (or h:mm:ss) of drill time. */
function clock(t: number | undefined): string {
  if (t === undefined) return '–';
  const s = Math.max(0, Math.round(t));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(h ? 2 : 1, '0');
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** Marks of the timeline on one axis: injects, alerts, acknowledgements, tasks, notes. */
function timelineSvg(r: DrillReport): string {
  const width = 760;
  const pad = 20;
  const span = Math.max(60, r.durationS, ...r.timeline.map((t) => t.t));
  const x = (t: number) => pad + ((width - 2 * pad) * t) / span;
  const rows: Record<string, { y: number; colour: string }> = {
    inject_fired: { y: 20, colour: '#1f5fbf' },
    message: { y: 20, colour: '#1f5fbf' },
    alert_opened: { y: 40, colour: '#c62828' },
    alert_acknowledged: { y: 40, colour: '#2e7d32' },
    task_done: { y: 60, colour: '#6a1b9a' },
    sms_failed: { y: 80, colour: '#ef6c00' },
    note: { y: 80, colour: '#555' },
  };
  const marks = r.timeline
    .filter((t) => rows[t.kind])
    .map((t) => {
      const row = rows[t.kind]!;
      return `<circle cx="${x(t.t).toFixed(1)}" cy="${row.y}" r="4" fill="${row.colour}"><title>${esc(clock(t.t))} ${esc(t.text.en)}</title></circle>`;
    })
    .join('');
  const ticks: string[] = [];
  const step = span > 3600 ? 900 : span > 1200 ? 300 : 60;
  for (let t = 0; t <= span; t += step) {
    ticks.push(
      `<line x1="${x(t).toFixed(1)}" y1="92" x2="${x(t).toFixed(1)}" y2="96" stroke="#999"/><text x="${x(t).toFixed(1)}" y="108" font-size="9" text-anchor="middle" fill="#666">${clock(t)}</text>`,
    );
  }
  return `<svg class="chart" viewBox="0 0 ${width} 112" width="100%" role="img" aria-label="timeline"><line x1="${pad}" y1="92" x2="${width - pad}" y2="92" stroke="#999"/>${ticks.join('')}${marks}</svg>`;
}

/** A printable, self-contained page (inline styles, no scripts, no external resources). */
export function reportHtml(r: DrillReport, lang: Lang = 'zh'): string {
  const l = L[lang];
  const d = r.drill;
  const dur = (s: number | undefined) => (s === undefined ? '–' : formatDuration(s, lang));
  const resultClass = (x: ObjectiveResultKind) => `result ${x}`;
  const table = (head: string[], body: string[][]) =>
    body.length === 0
      ? `<p class="none">${esc(l.none)}</p>`
      : `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${body
          .map((row) => `<tr>${row.map((c) => `<td>${c}</td>`).join('')}</tr>`)
          .join('')}</tbody></table>`;
  const objectives = table(
    [l.objective, l.result, l.rating],
    r.objectives.map((o) => [
      `<strong>${esc(o.text[lang])}</strong><br><span class="muted">${esc(o.statement[lang])}</span>`,
      `<span class="${resultClass(o.result)}">${esc(RESULT_TEXT[o.result][lang])}</span>`,
      o.rating
        ? `<strong>${esc(o.rating.rating)}</strong>${o.rating.note ? ` ${esc(o.rating.note)}` : ''}${o.rating.byName ? ` <span class="muted">(${esc(o.rating.byName)})</span>` : ''}`
        : '–',
    ]),
  );
  const timeline = table(
    [l.t, l.event, l.who],
    r.timeline.map((t) => [
      `<span class="mono">${esc(clock(t.t))}</span>`,
      `<span class="k-${esc(t.kind)}">${esc(t.text[lang])}</span>`,
      esc(t.byName ?? ''),
    ]),
  );
  const participants = table(
    [l.name, l.role, l.notified, l.acked, l.response, l.task, l.sms],
    r.participants.map((p) => [
      esc(p.name),
      esc(p.as.map((r) => word(r, lang)).join(lang === 'zh' ? '、' : ', ')),
      `<span class="mono">${esc(clock(p.notifiedS))}</span>`,
      `<span class="mono">${esc(clock(p.acknowledgedS))}</span>`,
      esc(dur(p.responseS)),
      `<span class="mono">${esc(clock(p.firstTaskDoneS))}</span>`,
      esc(p.sms),
    ]),
  );
  const alerts = table(
    [l.alertType, l.opened, l.acked, l.response, l.status],
    r.alerts.map((a) => [
      esc(alertTitle(a.type, lang)),
      `<span class="mono">${esc(clock(a.openedS))}</span>`,
      `<span class="mono">${esc(clock(a.acknowledgedS))}</span>`,
      esc(dur(a.ackAfterS)),
      esc(word(a.status, lang)),
    ]),
  );
  const tasks = table(
    [l.tasks, l.status, l.issued, l.done, l.took],
    r.tasks.map((t) => [
      esc(t.title[lang]),
      esc(l.taskStatus[t.status] ?? t.status),
      `<span class="mono">${esc(clock(t.issuedS))}</span>`,
      `<span class="mono">${esc(clock(t.doneS))}</span>`,
      esc(dur(t.tookS)),
    ]),
  );
  const failed = table(
    [l.t, l.role, l.sms, l.status],
    r.failedNotifications.map((f) => [
      `<span class="mono">${esc(clock(f.t))}</span>`,
      esc(roleWords(f.role, lang)),
      esc(f.recipient),
      esc(`${word(f.status, lang)}${f.errorCode ? ` ${f.errorCode}` : ''}`),
    ]),
  );
  const notes = table(
    [l.t, l.who, l.notes],
    r.notes.map((n) => [`<span class="mono">${esc(clock(n.t))}</span>`, esc(n.byName ?? n.by), esc(n.text)]),
  );
  const real = table(
    [l.alertType, l.opened, l.status],
    r.realAlerts.map((a) => [
      esc(alertTitle(a.type, lang)),
      esc(wallTime(a.openedAt, r.timezone)),
      esc(word(a.status, lang)),
    ]),
  );
  return `<!doctype html>
<html lang="${lang === 'zh' ? 'zh-CN' : 'en'}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(l.title)} · ${esc(d.name[lang])}</title>
<style>
body{font-family:"WenQuanYi Micro Hei","Noto Sans CJK SC","PingFang SC","Microsoft YaHei",system-ui,sans-serif;margin:24px auto;max-width:900px;color:#222;padding:0 16px;font-size:14px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px;border-bottom:2px solid #222;padding-bottom:2px}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f2f2f2}.muted{color:#555}.mono{font-family:ui-monospace,Menlo,Consolas,monospace}
.meta{display:grid;grid-template-columns:auto 1fr;gap:2px 12px;margin:8px 0}.meta dt{color:#555}.meta dd{margin:0}
.result{font-weight:bold;padding:1px 6px;border-radius:3px}.met{background:#e3f2e5;color:#1b5e20}.missed{background:#fde7e7;color:#b71c1c}.pending{background:#fff3cd;color:#7a5b00}
.banner{background:#fff3cd;border:1px solid #e0c060;padding:6px 10px;margin:8px 0}.drill{color:#b71c1c;font-weight:bold}
.k-sms_failed{color:#b71c1c}.none{color:#777}.chart{border:1px solid #ddd;margin:4px 0}
footer{margin-top:32px;color:#777;font-size:12px}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}tr{break-inside:avoid}.banner{border-color:#999}}
</style>
</head>
<body>
<p class="drill">【演练】 DRILL</p>
<h1>${esc(l.title)}${l.colon}${esc(d.name[lang])}</h1>
<p class="muted">${esc(r.drill.description[lang])}</p>
${r.final ? '' : `<p class="banner">${esc(l.provisional)}</p>`}
<dl class="meta">
<dt>${esc(l.type)}</dt><dd>${esc(d.type)}</dd>
<dt>${esc(l.status)}</dt><dd>${esc(l.statuses[d.status] ?? d.status)}</dd>
<dt>${esc(l.started)}</dt><dd>${esc(wallTime(d.startedAt, r.timezone))} <span class="muted">(${esc(r.timezone)})</span></dd>
${d.endedAt ? `<dt>${esc(l.ended)}</dt><dd>${esc(wallTime(d.endedAt, r.timezone))}</dd>` : ''}
<dt>${esc(l.duration)}</dt><dd>${esc(formatDuration(r.durationS, lang))}</dd>
</dl>
<h2>${esc(l.objectives)}</h2>
${objectives}
<h2>${esc(l.timeline)}</h2>
${timelineSvg(r)}
${timeline}
<h2>${esc(l.participants)}</h2>
${participants}
<h2>${esc(l.alerts)}</h2>
${alerts}
<h2>${esc(l.tasks)}</h2>
${tasks}
<h2>${esc(l.failed)}</h2>
${failed}
<h2>${esc(l.notes)}</h2>
${notes}
<h2>${esc(l.real)}</h2>
${real}
<footer>${esc(l.footer)} · ${esc(wallTime(r.generatedAt, r.timezone))}</footer>
</body>
</html>
`;
}
