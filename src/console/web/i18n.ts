/**
 * Every visible string of the console: Chinese (zh-CN) by default, English switchable (kept in localStorage).
 * Times are shown in the community's time zone (the WS `welcome.timezone`, or `GET /api/v1/rules`).
 * Alert type titles come from the SMS templates (src/notify/templates.ts), so the console and the SMS agree.
 */
import type { Outcome } from '../../alerts/service.ts';
import type { AlertStatus, Category, Severity } from '../../alerts/types.ts';
import type { NotificationStatus } from '../../notify/store.ts';
import { alertTitle as templateTitle } from '../../notify/templates.ts';
import type { AccessKind } from '../../registry/access-log.ts';
import type { Colour, Role } from '../../registry/types.ts';
import type { VisitOutcome } from '../../visits/service.ts';
import type { ObjectiveResultKind } from '../../drills/report.ts';
import type { DrillType } from '../../drills/scenario.ts';
import type { DrillStatus, Rating } from '../../drills/store.ts';
import { Store } from './store.ts';

export type Lang = 'zh' | 'en';

const LANG_KEY = 'gw.lang';

function initialLang(): Lang {
  try {
    const saved = localStorage.getItem(LANG_KEY);
    if (saved === 'zh' || saved === 'en') return saved;
  } catch {
    // storage disabled: the default
  }
  return 'zh';
}

export interface Settings {
  lang: Lang;
  /** IANA time zone of the community */
  tz: string;
}

export const settings = new Store<Settings>({ lang: initialLang(), tz: 'Asia/Shanghai' });

export async function setLang(lang: Lang): Promise<void> {
  await loadLang(lang);
  try {
    localStorage.setItem(LANG_KEY, lang);
  } catch {
    // not persisted; still switched
  }
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  settings.update((s) => ({ ...s, lang }));
}

export function setTimezone(tz: string): void {
  if (tz && tz !== settings.get().tz) settings.update((s) => ({ ...s, tz }));
}

const zh = {
  app_name: 'GridWatch 社区应急',
  app_short: 'GridWatch',
  lang_switch: 'English',
  lang_switch_label: 'Switch to English',
  loading: '加载中…',
  retry: '重试',
  save: '保存',
  cancel: '取消',
  close: '关闭',
  submit: '提交',
  more: '加载更多',
  none: '无',
  yes: '是',
  no: '否',
  unknown: '未知',
  error_generic: '出错了：{msg}',
  error_network: '网络不通，请检查连接后重试',
  forbidden: '您的账号无权查看或操作此内容。',
  not_available: '服务器暂未提供此功能（{path}）。',
  not_found: '找不到：{what}',
  saved: '已保存',
  // login
  login_title: '登录',
  login_username: '用户名',
  login_password: '密码',
  login_phone: '在这部手机上保持登录',
  login_phone_hint: '网格员手机：凌晨来告警时两下即可确认。公用电脑请勿勾选。',
  login_submit: '登录',
  session_expired: '登录已过期或已在别处退出，请重新登录',
  skip_to_content: '跳到主要内容',
  login_failed: '用户名或密码错误，或账号已停用',
  login_rate: '尝试次数过多，请稍后再试',
  logout: '退出登录',
  signed_in_as: '当前用户：{name}',
  // nav
  nav_board: '告警看板',
  nav_mobile: '我的告警',
  nav_overview: '社区概况',
  nav_households: '住户',
  nav_devices: '设备',
  nav_outbox: '短信记录',
  nav_staff: '人员管理',
  nav_access_log: '访问日志',
  nav_roster: '值班表',
  nav_drills: '应急演练',
  nav_label: '主导航',
  // connection
  conn_live: '实时',
  conn_connecting: '连接中…',
  conn_reconnecting: '重新连接中…',
  conn_offline: '离线',
  conn_polling: '非实时（定时刷新）',
  conn_title_live: '实时连接正常：告警一秒内到达',
  reconnecting_banner: '实时连接已断开，正在重新连接…（{s} 秒后重试）',
  reconnecting_now: '实时连接已断开，正在重新连接…',
  reconnect_now: '立即重连',
  polling_banner: '实时通道不可用：每 {s} 秒刷新一次告警列表',
  ws_error_origin: '实时通道拒绝了本页面的来源（Origin）',
  ws_error_version: '实时通道协议版本不匹配，请刷新页面',
  sms_outbox_banner: '短信仅写入发件箱（未配置短信服务）：没有任何人的手机会响！',
  drill: '【演练】',
  drill_badge: '演练',
  // board
  board_title: '实时告警',
  board_empty: '当前没有待处理的告警',
  board_counts: '待处理 {open} · 已确认 {acked}',
  board_filter_all: '全部',
  board_filter_open: '待处理',
  board_filter_acked: '已确认',
  board_recent_closed: '最近关闭',
  col_severity: '级别',
  col_type: '告警',
  col_where: '地点',
  col_age: '已持续',
  col_notified: '已通知',
  col_acked: '确认人',
  col_actions: '操作',
  ack: '确认',
  ack_mobile: '我这就去',
  acked_by: '{who} 已确认',
  acked_by_you: '您已确认',
  not_acked: '未确认',
  resolve: '解决',
  resolve_mobile: '处理完毕',
  resolve_title: '处理结果',
  resolve_note: '说明（可选）',
  resolve_submit: '确认解决',
  resolve_pick: '请选择处理结果',
  add_note: '添加备注',
  note_placeholder: '备注内容',
  note_submit: '保存备注',
  details: '详情',
  hide_details: '收起',
  timeline: '处理记录',
  evidence: '依据',
  notifications: '短信通知',
  no_notifications: '尚未发送短信',
  notified_n: '{n} 人',
  summary: '说明',
  first_seen: '首次',
  last_seen: '最近',
  count_times: '共 {n} 次',
  cancel_window: '取消窗口至 {t}：暂不通知',
  household_link: '住户详情',
  device_link: '设备详情',
  by_system: '系统',
  by_you: '我',
  via: '经 {via}',
  // ages
  age_s: '{s}秒',
  age_m: '{m}分{s}秒',
  age_h: '{h}小时{m}分',
  age_d: '{d}天{h}小时',
  ago: '{age}前',
  // mobile
  m_title: '我的告警',
  m_empty: '没有需要您处理的告警 ✓',
  m_what_to_do: '怎么做：',
  m_visits_title: '待走访住户',
  m_visits_empty: '没有逾期的走访',
  m_overdue_days: '逾期 {n} 天',
  m_due: '今天到期',
  m_last_visit: '上次走访：{t}',
  m_never_visited: '尚无走访记录',
  m_record_visit: '记录走访',
  step_n: '第{n}步',
  show_all: '全部显示（{n}）',
  visit_outcome: '走访结果',
  visit_notes: '走访情况（可选）',
  visit_submit: '保存走访',
  visit_saved: '走访已记录',
  // household
  hh_title: '住户',
  hh_residents: '居住人员',
  hh_masked: '姓名按您的权限脱敏显示',
  hh_shown: '已显示全名和紧急联系人：本次查看已记入访问日志',
  hh_contacts: '紧急联系人',
  hh_devices: '设备',
  hh_activity: '活动情况',
  hh_alerts: '近期告警',
  hh_visits: '走访记录',
  hh_away: '外出登记',
  hh_away_none: '当前无外出登记',
  hh_away_until: '外出至',
  hh_away_reason: '原因',
  hh_away_submit: '登记外出',
  hh_away_end: '已回家（结束外出）',
  hh_away_active: '外出中，至 {t}',
  hh_away_presets: '快速选择',
  hh_lone: '独居老人',
  hh_at_risk: '重点关注',
  hh_age: '{n}岁',
  hh_list_title: '住户列表',
  range_24h: '最近 24 小时',
  range_7d: '最近 7 天',
  chart_motion: '活动次数',
  chart_water: '用水（升）',
  chart_power: '平均功率（瓦）',
  chart_energy: '用电（千瓦时）',
  chart_door: '门禁通行次数',
  chart_no_data: '无数据',
  days_n: '{n} 天',
  // device
  dev_title: '设备',
  dev_status: '状态',
  dev_last_seen: '最后在线',
  dev_battery: '电量',
  dev_model: '型号',
  dev_kind: '类型',
  dev_where: '安装位置',
  dev_readings: '最新读数',
  dev_rejects: '最近被拒消息',
  dev_rejects_none: '没有被拒的消息',
  dev_commands: '指令',
  dev_command_name: '指令',
  dev_command_args: '参数（JSON）',
  dev_command_send: '发送指令',
  dev_command_confirm: '确定向设备 {id} 发送指令「{name}」？',
  dev_command_sent: '指令已发送',
  dev_commands_none: '暂无指令记录',
  dev_no_commands: '此型号不支持指令',
  dev_args_invalid: '参数必须是 JSON 对象',
  dev_chart: '最近 24 小时',
  dev_field: '读数',
  dev_list_title: '设备列表',
  dev_drill: '演练设备',
  dev_disabled: '已停用',
  cmd_status: '状态',
  cmd_by: '发送人',
  cmd_answer: '设备回复',
  // overview
  ov_title: '社区概况',
  ov_grid: '网格',
  ov_building: '楼栋',
  ov_households: '户数',
  ov_open_alerts: '待处理告警',
  ov_offline: '离线设备',
  ov_per_day: '近 {n} 天每日告警（按类型）',
  ov_ack_times: '确认用时（按网格）',
  ov_median: '中位数',
  ov_p90: '90% 分位',
  ov_n: '告警数',
  ov_outcomes: '处理结果统计',
  ov_total: '合计',
  ov_other_types: '其他',
  ov_closed: '已关闭 {n} 条',
  ov_false_rate: '误报率 {pct}%',
  // outbox
  ob_title: '短信记录',
  ob_time: '时间',
  ob_alert: '告警',
  ob_recipient: '接收人',
  ob_role: '角色',
  ob_step: '步骤',
  ob_transport: '通道',
  ob_status: '状态',
  ob_history: '状态记录',
  ob_body: '内容',
  ob_empty: '没有短信记录',
  ob_filter_status: '状态筛选',
  ob_batch: '已合并到 {id}',
  transport_outbox: '发件箱（未发出）',
  transport_twilio: 'Twilio',
  // staff
  st_title: '人员管理',
  st_create: '新建账号',
  st_username: '用户名',
  st_name: '姓名',
  st_phone: '手机号（+86…）',
  st_roles: '角色',
  st_grids: '负责网格',
  st_communities: '负责社区',
  st_streets: '负责街道',
  st_password: '初始密码（至少 10 位）',
  st_new_password: '新密码（至少 10 位）',
  st_disabled: '已停用',
  st_active: '正常',
  st_disable: '停用',
  st_enable: '启用',
  st_edit: '编辑',
  st_reset_password: '重置密码',
  st_password_reset: '密码已重置，该账号已在所有设备上退出',
  st_created: '账号已创建',
  st_coverage: '负责范围',
  st_everything: '全部',
  // access log
  al_title: '访问日志',
  al_time: '时间',
  al_staff: '人员',
  al_household: '住户',
  al_action: '操作',
  al_empty: '没有访问记录',
  // roster
  ro_title: '值班表（请假与代班）',
  ro_staff: '请假人员',
  ro_substitute: '代班人员',
  ro_from: '开始',
  ro_to: '结束',
  ro_role: '角色（可选）',
  ro_grid: '网格（可选）',
  ro_note: '备注',
  ro_add: '登记请假',
  ro_end: '提前结束',
  ro_empty: '没有值班调整',
  ro_any_role: '所有角色',
  ro_any_grid: '所有网格',
  ro_active_now: '生效中',
  // drills (issue 6)
  dr_title: '应急演练',
  dr_scenarios: '演练脚本',
  dr_scenarios_empty: '没有演练脚本（config/drills）',
  dr_type: '类型',
  dr_scope: '范围',
  dr_objectives: '目标',
  dr_injects_n: '注入 {n} 项',
  dr_minutes: '约 {n} 分钟',
  dr_start: '开始演练',
  dr_start_confirm: '开始演练「{name}」？参与人员会收到带【演练】字样的短信。',
  dr_started: '演练已开始',
  dr_unavailable: '本社区无法运行：{problems}',
  dr_active_link: '演练进行中，打开',
  dr_history: '演练记录',
  dr_history_hint: '按社区列出，可逐季度对比目标达成情况',
  dr_history_empty: '尚无演练记录',
  dr_community: '社区：{name}',
  dr_date: '日期',
  dr_scenario: '脚本',
  dr_status: '状态',
  dr_duration: '演练用时',
  dr_progress: '进度',
  dr_result: '目标',
  dr_result_counts: '达成 {met} · 未达成 {missed}',
  dr_progress_short: '注入 {fi}/{ti} · 任务 {td}/{tt}',
  dr_open: '打开',
  dr_report: '评估报告',
  dr_all_scenarios: '全部脚本',
  dr_banner: '【演练 DRILL】',
  dr_banner_sub: '这是演练，不是真实事件。演练告警和短信都带有【演练】字样。',
  dr_running_banner: '演练进行中：{name}',
  dr_paused_banner: '演练已暂停：{name}',
  dr_clock: '演练时间',
  dr_clock_hint: '自开始起的时间，不含暂停',
  dr_pause: '暂停',
  dr_resume: '继续',
  dr_end: '结束演练',
  dr_end_confirm: '结束演练？尚未处理的演练告警将被撤销，之后可查看评估报告。',
  dr_paused_toast: '演练已暂停：计时和注入暂停',
  dr_resumed_toast: '演练继续',
  dr_ended_toast: '演练已结束',
  dr_started_by: '{who} 于 {t} 开始',
  dr_ended_at: '{who} 于 {t} 结束',
  dr_counts: '注入 {fi}/{ti} · 任务 {td}/{tt} · 演练告警 {a} · 参与人员 {p}',
  dr_injects: '注入清单（MSEL）',
  dr_time: '时间',
  dr_inject: '注入',
  dr_trigger: '触发方式',
  dr_state: '状态',
  dr_at: '开始后 {t}',
  dr_manual: '手动触发',
  dr_after_inject: '「{what}」触发后 {d}',
  dr_after_task: '「{what}」完成后 {d}',
  dr_due: '预计 {t}',
  dr_fire: '触发',
  dr_fire_early: '提前触发',
  dr_fired_toast: '已触发：{what}',
  dr_by_schedule: '按计划',
  dr_inject_error: '失败：{msg}',
  dr_alerts: '演练告警',
  dr_alerts_empty: '尚无演练告警',
  dr_alerts_closed: '已关闭的演练告警（{n}）',
  dr_real: '演练期间的真实告警：{n}',
  dr_real_hint: '真实告警照常处理，显示在告警看板上，不计入演练。',
  dr_real_link: '打开告警看板',
  dr_tasks: '任务',
  dr_tasks_empty: '本脚本没有任务',
  dr_task_done: '完成',
  dr_task_done_toast: '任务已完成：{what}',
  dr_task_for: '负责：{role}',
  dr_task_issued: '下达于 {t}',
  dr_task_done_by: '{who} 于 {t} 完成',
  dr_task_households: '住户 {n} 户：',
  dr_messages: '通报',
  dr_messages_empty: '尚无通报',
  dr_sms_n: '短信 {n} 条',
  dr_notes: '评估记录',
  dr_notes_empty: '尚无评估记录',
  dr_note_label: '评估记录内容',
  dr_note_placeholder: '观察到的情况、问题和改进建议',
  dr_note_submit: '添加记录',
  dr_ratings: '目标与评级（HSEEP：P / S / M / U）',
  dr_rating_none: '未评级',
  dr_rated: '{who} 评为 {r}',
  dr_rating_for: '为「{what}」评级',
  dr_participants: '参与人员（{n}）',
  dr_as: '身份',
  dr_roles: '参与角色',
  dr_report_link: '评估报告',
  dr_back: '返回演练列表',
  dr_dur_m: '{m}分钟',
  dr_dur_h: '{h}小时',
  dr_target_first_ack: '首次确认 ≤ {d}',
  dr_target_all_acked: '全部告警确认 ≤ {d}',
  dr_target_tasks: '任务完成 ≤ {d}（自下达起）',
  dr_target_tasks_start: '任务完成 ≤ {d}（自演练开始）',
  dr_target_injects: '注入处置 ≤ {d}',
  rp_title: '评估报告',
  rp_provisional: '演练仍在进行：以下为临时结果，仍会变化。',
  rp_generated: '生成于 {t}',
  rp_download: '下载：',
  rp_html: '打印版（HTML）',
  rp_csv: 'CSV',
  rp_json: 'JSON',
  rp_back: '返回演练',
  rp_objectives: '目标达成情况',
  rp_objective: '目标',
  rp_target: '要求',
  rp_measured: '实测',
  rp_result: '结果',
  rp_rating: '评级',
  rp_summary: '达成 {met} 项，未达成 {missed} 项，进行中 {pending} 项',
  rp_chart: '事件时间线（演练时间）',
  rp_timeline: '时间线',
  rp_event: '事件',
  rp_who: '人员',
  rp_participants: '人员响应时间',
  rp_person: '人员',
  rp_notified: '收到短信',
  rp_acked: '确认',
  rp_response: '响应用时',
  rp_first_task: '首个任务完成',
  rp_tasks_done: '完成任务',
  rp_sms: '短信',
  rp_alerts: '演练告警',
  rp_opened: '产生',
  rp_ack_after: '确认用时',
  rp_tasks: '任务',
  rp_took: '用时',
  rp_notifications: '短信：共 {total} · 已发出 {sent} · 已送达 {delivered} · 失败 {failed} · 暂缓 {held}',
  rp_failed: '发送失败的短信',
  rp_failed_none: '没有发送失败的短信',
  rp_recipient: '接收人',
  rp_notes: '评估记录',
  rp_real: '演练期间的真实告警（照常处理）',
  rp_none: '无',
  rp_mk_alert: '产生告警',
  rp_mk_good: '确认 / 完成',
  rp_mk_stop: '暂停 / 结束 / 撤销',
  rp_mk_bad: '短信失败',
  rp_lane_drill: '演练',
  rp_lane_inject: '注入',
  rp_lane_alert: '告警',
  rp_lane_task: '任务',
  rp_lane_sms: '短信',
  rp_lane_note: '评估',
  // misc
  page_not_found: '页面不存在',
  back_to_board: '返回告警看板',
  filter_grid: '网格',
  filter_colour: '分类',
  filter_status: '状态',
  all: '全部',
  you: '您',
  list_sep: '、',
  resolved_toast: '{title}：{outcome}',
  dev_id: '设备编号',
  // supplies (issue 7)
  nav_supplies: '物资',
  sp_title: '应急物资',
  sp_depots: '储备点',
  sp_depots_empty: '暂无可查看的储备点',
  sp_depot: '储备点',
  sp_level: '级别',
  sp_level_community: '社区',
  sp_level_street: '街道',
  sp_level_district: '区',
  sp_community: '社区',
  sp_keeper: '管理员',
  sp_population: '服务人口',
  sp_status: '状态',
  sp_b_below: '{n}项低于最低储备',
  sp_b_expiring: '{n}项30天内到期',
  sp_b_expired: '{n}项已过期',
  sp_b_inspection: '{n}项待检查',
  sp_b_transfers: '{n}笔调拨进行中',
  sp_b_ok: '正常',
  sp_shortfalls: '各社区缺口（按人口核定最低储备）',
  sp_shortfalls_hint: '社区所有储备点可用数量与最低储备之比；在途调拨单列。',
  sp_shortfall_none: '无缺口',
  sp_shortfall_n: '{n}项不足',
  sp_item: '物资',
  sp_minimum: '最低储备',
  sp_available: '可用',
  sp_usable: '可用',
  sp_incoming: '在途',
  sp_shortfall: '缺口',
  sp_total: '总数',
  sp_expired: '已过期',
  sp_next_expiry: '最近到期',
  sp_not_in_registry: '（非本系统社区）',
  sp_report_csv: '导出库存表（CSV）',
  sp_report_lots_csv: '导出批次明细（CSV）',
  sp_report_html: '打印库存报告',
  sp_import: '导入盘点（CSV）',
  sp_import_hint:
    '列：depot_id, item_id, quantity，可选 received_on, expires_on, condition, last_inspected_on, note。先检查，无误后再导入；有任何一行出错则全部不导入。',
  sp_import_file: 'CSV 文件',
  sp_import_check: '检查',
  sp_import_do: '导入 {n} 行',
  sp_import_ok_check: '{n} 行无误，涉及储备点：{depots}',
  sp_import_done: '已导入 {n} 个批次',
  sp_import_errors: '{n} 处问题，未导入任何数据：',
  sp_import_line: '第 {line} 行',
  sp_back: '返回物资总览',
  sp_address: '地址',
  sp_agreements: '供货协议',
  sp_agreement_line: '{supplier}：{item} {qty}{unit}，{h}小时内送达',
  sp_stock: '库存',
  sp_below: '低于最低储备',
  sp_ok: '充足',
  sp_find: '查找附近',
  sp_sources_title: '附近有{item}的储备点',
  sp_sources_empty: '附近没有可调拨的库存',
  sp_spare: '可调出',
  sp_relation: '关系',
  sp_rel_own: '本储备点',
  sp_rel_same_street: '同街道社区',
  sp_rel_street: '街道储备库',
  sp_rel_district: '区储备中心',
  sp_rel_other: '其他',
  sp_agreement: '供货协议',
  sp_agreement_src: '{supplier}：{qty}，{h}小时内',
  sp_request: '申请调拨',
  sp_request_qty: '调拨数量',
  sp_request_reason: '原因',
  sp_request_reason_default: '低于最低储备，申请互助调拨',
  sp_request_sent: '调拨申请已发出',
  sp_lots: '批次',
  sp_lots_empty: '暂无批次',
  sp_lot_qty: '数量',
  sp_received_on: '入库日期',
  sp_expires_on: '到期日期',
  sp_condition: '状况',
  sp_inspection_due: '下次检查',
  sp_inspection_overdue: '检查逾期',
  sp_exp_expired: '已过期',
  sp_exp_minor: '30天内到期',
  sp_exp_info: '90天内到期',
  sp_exp_ok: '有效',
  sp_exp_none: '无有效期',
  sp_days_left: '剩{n}天',
  sp_days_ago: '过期{n}天',
  sp_cond_good: '完好',
  sp_cond_damaged: '损坏',
  sp_cond_faulty: '故障',
  sp_actions: '操作',
  sp_receive: '入库',
  sp_receive_title: '入库（新批次）',
  sp_qty: '数量',
  sp_expires: '到期日期（空：按保质期计算）',
  sp_source: '来源',
  sp_received: '已入库',
  sp_issue: '出库',
  sp_issue_title: '出库（发放）',
  sp_issue_kind: '发放给',
  sp_issue_ref: '编号 / 说明',
  sp_issue_ref_hint: '演练编号、事件编号或人员编号（不写姓名）',
  sp_to_drill: '演练',
  sp_to_incident: '事件',
  sp_to_person: '人员',
  sp_to_other: '其他',
  sp_reason: '原因',
  sp_issued: '已出库',
  sp_dispose: '报废',
  sp_dispose_reason: '报废原因',
  sp_dr_expired: '过期',
  sp_dr_damaged: '损坏',
  sp_dr_faulty: '故障',
  sp_dr_other: '其他',
  sp_disposed: '已报废',
  sp_inspect: '检查',
  sp_inspect_pass: '检查合格',
  sp_inspect_fail: '检查不合格',
  sp_inspected: '检查已记录',
  sp_adjust: '盘点',
  sp_adjust_counted: '实盘数量',
  sp_adjusted: '盘点已记录',
  sp_note: '备注',
  sp_lot_action: '批次 {lot}：{item}',
  sp_alerts: '本储备点告警',
  sp_alerts_none: '无未处理告警',
  sp_al_supplies_below_minimum: '低于最低储备',
  sp_al_supplies_expiring: '即将到期',
  sp_al_supplies_expired: '已过期',
  sp_al_supplies_inspection_overdue: '检查逾期',
  sp_transfers: '调拨',
  sp_transfers_empty: '暂无调拨',
  sp_from: '调出',
  sp_to: '调入',
  sp_requested_at: '申请时间',
  sp_ts_requested: '待审批',
  sp_ts_approved: '已同意',
  sp_ts_declined: '已拒绝',
  sp_ts_cancelled: '已撤销',
  sp_ts_in_transit: '运送中',
  sp_ts_received: '已签收',
  sp_ta_approve: '同意',
  sp_ta_decline: '拒绝',
  sp_ta_dispatch: '发出',
  sp_ta_receive: '签收',
  sp_ta_cancel: '撤销',
  sp_decline_reason: '拒绝原因：',
  sp_transfer_done: '调拨已更新',
  sp_calendar: '12个月到期日历',
  sp_cal_expired: '已过期',
  sp_cal_empty: '—',
  sp_ledger: '台账',
  sp_ledger_hint: '只增不改：更正为一条新记录。',
  sp_ledger_empty: '暂无记录',
  sp_time: '时间',
  sp_kind: '类型',
  sp_by: '操作人',
  sp_balance: '批次余量',
  sp_ref: '关联',
  sp_since: '起始日期',
  sp_all_items: '全部物资',
  sp_all_kinds: '全部类型',
  sp_mk_receive: '入库',
  sp_mk_issue: '出库',
  sp_mk_return: '归还',
  sp_mk_transfer_out: '调出',
  sp_mk_transfer_in: '调入',
  sp_mk_dispose: '报废',
  sp_mk_inspect: '检查',
  sp_mk_adjust: '盘点调整',
  sp_live_updated: '库存已更新',
} as const;

export type Key = keyof typeof zh;

const DICTS: Partial<Record<Lang, Record<Key, string>>> = { zh };

/** Loads a language's texts (English is a separate file, fetched when first chosen). */
export async function loadLang(lang: Lang): Promise<void> {
  if (lang === 'en' && !DICTS.en) DICTS.en = (await import('./i18n-en.ts')).en;
}

/** The text of `key` in the current language, with `{name}` placeholders filled. */
export function t(key: Key, vars?: Record<string, string | number>): string {
  const text = (DICTS[settings.get().lang] ?? zh)[key];
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (m, name: string) => (name in vars ? String(vars[name]) : m));
}

// ------------------------------------------------------------------ enumerations

interface Label {
  zh: string;
  en: string;
}
type Labels = Record<string, Label>;

const SEVERITY = {
  critical: { zh: '紧急', en: 'Critical' },
  major: { zh: '重要', en: 'Major' },
  minor: { zh: '一般', en: 'Minor' },
  info: { zh: '提示', en: 'Info' },
} satisfies Record<Severity, Label>;
const STATUS = {
  open: { zh: '待处理', en: 'Open' },
  acknowledged: { zh: '已确认', en: 'Acknowledged' },
  resolved: { zh: '已解决', en: 'Resolved' },
  cancelled: { zh: '已撤销', en: 'Cancelled' },
} satisfies Record<AlertStatus, Label>;
const COLOUR = {
  red: { zh: '红', en: 'Red' },
  orange: { zh: '橙', en: 'Orange' },
  yellow: { zh: '黄', en: 'Yellow' },
  blue: { zh: '蓝', en: 'Blue' },
  green: { zh: '绿', en: 'Green' },
} satisfies Record<Colour, Label>;
const COLOUR_CLASS = {
  red: { zh: '一类：日日走访', en: 'Class 1: visited daily' },
  orange: { zh: '二类：周周走访', en: 'Class 2: visited weekly' },
  yellow: { zh: '三类：半月走访', en: 'Class 3: visited half-monthly' },
  blue: { zh: '四类：月月走访', en: 'Class 4: visited monthly' },
  green: { zh: '五类：每季度走访', en: 'Class 5: visited quarterly' },
} satisfies Record<Colour, Label>;
const OUTCOME = {
  resident_fine: { zh: '居民安好', en: 'Resident fine' },
  sent_to_hospital: { zh: '已送医', en: 'Sent to hospital' },
  false_alarm_away: { zh: '误报：人不在家', en: 'False alarm: away' },
  false_alarm_device: { zh: '误报：设备问题', en: 'False alarm: device' },
  false_alarm_other: { zh: '误报：其他原因', en: 'False alarm: other' },
  handled_on_site: { zh: '已现场处置', en: 'Handled on site' },
  other: { zh: '其他', en: 'Other' },
} satisfies Record<Outcome, Label>;
const VISIT_OUTCOME = {
  ok: { zh: '一切正常', en: 'All fine' },
  needs_follow_up: { zh: '需要跟进', en: 'Needs follow-up' },
  not_home: { zh: '不在家', en: 'Not at home' },
  referred: { zh: '已转介', en: 'Referred' },
  other: { zh: '其他', en: 'Other' },
} satisfies Record<VisitOutcome, Label>;
const ROLE = {
  grid_worker: { zh: '网格员', en: 'Grid worker' },
  grid_leader: { zh: '网格长', en: 'Grid leader' },
  building_leader: { zh: '楼栋长', en: 'Building leader' },
  unit_leader: { zh: '单元长', en: 'Unit leader' },
  committee_member: { zh: '居委会委员', en: 'Committee member' },
  party_volunteer: { zh: '党员志愿者', en: 'Party volunteer' },
  community_director: { zh: '社区书记/主任', en: 'Community director' },
  street_duty_officer: { zh: '街道值班员', en: 'Street duty officer' },
  depot_keeper: { zh: '物资管理员', en: 'Depot keeper' },
  drill_controller: { zh: '演练导调', en: 'Drill controller' },
  evaluator: { zh: '演练评估员', en: 'Evaluator' },
  admin: { zh: '系统管理员', en: 'Administrator' },
} satisfies Record<Role, Label>;
const NOTIFICATION_STATUS = {
  pending: { zh: '待发送', en: 'Pending' },
  queued: { zh: '排队中', en: 'Queued' },
  sent: { zh: '已发送', en: 'Sent' },
  delivered: { zh: '已送达', en: 'Delivered' },
  undelivered: { zh: '未送达', en: 'Undelivered' },
  failed: { zh: '发送失败', en: 'Failed' },
  capped: { zh: '已限流', en: 'Held (cap)' },
  bundled: { zh: '已合并发送', en: 'Bundled' },
} satisfies Record<NotificationStatus, Label>;
const TIMELINE_ACTION: Labels = {
  opened: { zh: '产生告警', en: 'Opened' },
  repeated: { zh: '再次触发', en: 'Repeated' },
  acknowledged: { zh: '确认', en: 'Acknowledged' },
  note: { zh: '备注', en: 'Note' },
  resolved: { zh: '解决', en: 'Resolved' },
  cancelled: { zh: '撤销', en: 'Cancelled' },
  escalated: { zh: '升级', en: 'Escalated' },
  notified: { zh: '已通知', en: 'Notified' },
};
const VIA: Labels = {
  console: { zh: '控制台', en: 'console' },
  api: { zh: '接口', en: 'API' },
  sms: { zh: '短信', en: 'SMS' },
  rule: { zh: '规则', en: 'rule' },
  device: { zh: '设备', en: 'device' },
};
const DEVICE_STATUS: Labels = {
  online: { zh: '在线', en: 'Online' },
  offline: { zh: '离线', en: 'Offline' },
  unknown: { zh: '未知', en: 'Unknown' },
};
const COMMAND_STATUS: Labels = {
  pending: { zh: '待发送', en: 'Pending' },
  sent: { zh: '已发送', en: 'Sent' },
  acknowledged: { zh: '设备已执行', en: 'Acknowledged' },
  failed: { zh: '失败', en: 'Failed' },
  timeout: { zh: '超时无回复', en: 'Timed out' },
};
const FIELD: Labels = {
  motion: { zh: '有人活动', en: 'Motion' },
  contact_open: { zh: '门磁开启', en: 'Contact open' },
  smoke: { zh: '烟雾', en: 'Smoke' },
  occupancy: { zh: '有人', en: 'Occupancy' },
  water_total_l: { zh: '累计用水（升）', en: 'Water total (L)' },
  energy_total_kwh: { zh: '累计用电（千瓦时）', en: 'Energy total (kWh)' },
  power_w: { zh: '功率（瓦）', en: 'Power (W)' },
  gas_total_m3: { zh: '累计燃气（立方米）', en: 'Gas total (m³)' },
  heart_rate_bpm: { zh: '心率', en: 'Heart rate' },
  battery_pct: { zh: '电量（%）', en: 'Battery (%)' },
  temperature_c: { zh: '温度（℃）', en: 'Temperature (°C)' },
};
const KIND: Labels = {
  charging_area: { zh: '集中充电区', en: 'Charging area' },
  door_access: { zh: '门禁', en: 'Door access' },
  door_contact: { zh: '门磁', en: 'Door contact' },
  ebike_cutoff: { zh: '电动车充电断电器', en: 'E-bike cut-off' },
  electricity_meter: { zh: '电表', en: 'Electricity meter' },
  emergency_button: { zh: '紧急呼叫按钮', en: 'Emergency button' },
  gas_detector: { zh: '燃气报警器', en: 'Gas detector' },
  gas_meter: { zh: '燃气表', en: 'Gas meter' },
  motion_sensor: { zh: '人体感应器', en: 'Motion sensor' },
  smoke_detector: { zh: '烟感', en: 'Smoke detector' },
  water_meter: { zh: '水表', en: 'Water meter' },
  wristband: { zh: '智能手环', en: 'Wristband' },
};
const COMMAND: Labels = {
  restore_power: { zh: '恢复供电', en: 'Restore power' },
  cut_power: { zh: '切断供电', en: 'Cut power' },
  open_door: { zh: '远程开门', en: 'Open the door' },
  locate: { zh: '定位', en: 'Locate' },
};
const ACCESS_KIND = {
  residents: { zh: '居民全名', en: 'Residents’ full names' },
  emergency_contacts: { zh: '紧急联系人', en: 'Emergency contacts' },
} satisfies Record<AccessKind, Label>;
const CATEGORY = {
  resident_safety: { zh: '居民安全', en: 'Resident safety' },
  fire: { zh: '消防', en: 'Fire' },
  security: { zh: '安防', en: 'Security' },
  ebike: { zh: '电动车', en: 'E-bike' },
  maintenance: { zh: '设备维护', en: 'Maintenance' },
  supplies: { zh: '物资', en: 'Supplies' },
  visit: { zh: '走访', en: 'Visits' },
} satisfies Record<Category, Label>;
const DRILL_TYPE = {
  fire: { zh: '火灾', en: 'Fire' },
  ebike_fire: { zh: '电动车火灾', en: 'E-bike fire' },
  flood: { zh: '暴雨内涝', en: 'Flood' },
  power_cut: { zh: '停电', en: 'Power cut' },
  sewage_overflow: { zh: '污水外溢', en: 'Sewage overflow' },
  lone_elderly: { zh: '独居老人应急', en: 'Lone elderly emergency' },
  gas_leak: { zh: '燃气泄漏', en: 'Gas leak' },
  earthquake: { zh: '地震', en: 'Earthquake' },
  epidemic: { zh: '疫情', en: 'Epidemic' },
  other: { zh: '其他', en: 'Other' },
} satisfies Record<DrillType, Label>;
const DRILL_STATUS = {
  running: { zh: '进行中', en: 'Running' },
  paused: { zh: '已暂停', en: 'Paused' },
  ended: { zh: '已结束', en: 'Ended' },
} satisfies Record<DrillStatus, Label>;
const INJECT_KIND: Labels = {
  device_event: { zh: '设备事件', en: 'Device event' },
  message: { zh: '通报', en: 'Message' },
  task: { zh: '任务', en: 'Task' },
};
const INJECT_STATE: Labels = {
  fired: { zh: '已触发', en: 'Fired' },
  scheduled: { zh: '待触发', en: 'Scheduled' },
  waiting: { zh: '等待前序', en: 'Waiting' },
  manual: { zh: '待手动触发', en: 'Manual' },
};
const TASK_STATUS: Labels = {
  pending: { zh: '未下达', en: 'Not issued' },
  open: { zh: '进行中', en: 'Open' },
  done: { zh: '已完成', en: 'Done' },
};
const OBJECTIVE_RESULT = {
  met: { zh: '达成', en: 'Met' },
  missed: { zh: '未达成', en: 'Missed' },
  pending: { zh: '进行中', en: 'Pending' },
} satisfies Record<ObjectiveResultKind, Label>;
/** HSEEP's rating of how an objective was performed. */
const RATING = {
  P: { zh: '顺利完成（P）', en: 'Performed without challenges (P)' },
  S: { zh: '基本完成，有些问题（S）', en: 'Performed with some challenges (S)' },
  M: { zh: '勉强完成，问题较大（M）', en: 'Performed with major challenges (M)' },
  U: { zh: '未能完成（U）', en: 'Unable to be performed (U)' },
} satisfies Record<Rating, Label>;

/** What the grid worker does, per alert type (the phone page): more than the SMS has room for. */
const TODO: Labels = {
  sos: {
    zh: '立即电话联系居民；无人接听立即上门，必要时拨打 120',
    en: 'Call the resident now; no answer: go now, call 120 if needed',
  },
  fall: { zh: '立即上门查看，不要移动伤者，必要时拨打 120', en: 'Go now; do not move them; call 120 if needed' },
  smoke: { zh: '立即核实现场，有火情拨打 119 并组织疏散', en: 'Check now; fire: call 119 and evacuate' },
  gas_leak: {
    zh: '勿开关电器、勿用明火，开窗通风，通知燃气公司',
    en: 'No switches or flames, open windows, call the gas company',
  },
  charging_area_fire: {
    zh: '立即拨打 119，切断充电区电源，疏散人员',
    en: 'Call 119, cut the charging area’s power, evacuate',
  },
  night_exit: { zh: '联系家属，必要时外出寻找', en: 'Call the family; search if needed' },
  door_forced: { zh: '尽快到楼门核实，必要时报警', en: 'Check the door soon; call the police if needed' },
  door_held_open: { zh: '安排关闭楼门', en: 'Have the door closed' },
  door_denied_repeated: { zh: '到楼门核实来人身份', en: 'Check who is at the door' },
  ebike_charging: { zh: '劝导居民到集中充电区充电', en: 'Ask the resident to use the charging area' },
  ebike_charging_repeated: { zh: '上门劝导并记录', en: 'Visit, advise and record it' },
  ebike_overtemp: { zh: '立即断电并到现场核查', en: 'Cut the power and check on site now' },
  inactivity: { zh: '先电话问候；无人接听请上门', en: 'Call first; no answer: visit' },
  not_seen: { zh: '电话或上门确认居民情况', en: 'Call or visit to check on them' },
  water_low: { zh: '电话问候居民', en: 'Call the resident' },
  water_continuous: { zh: '核实是否漏水或水龙头未关', en: 'Check for a leak or a tap left on' },
  gas_left_on: { zh: '提醒居民关闭燃气，必要时上门', en: 'Remind them to turn the gas off; visit if needed' },
  visit_overdue: { zh: '尽快安排走访', en: 'Visit soon' },
  device_offline: { zh: '安排检修设备', en: 'Have the device repaired' },
  low_battery: { zh: '更换电池', en: 'Replace the battery' },
  monitoring_lost: { zh: '尽快恢复监测设备，期间电话关注居民', en: 'Restore the sensors; call the resident meanwhile' },
  devices_offline_mass: { zh: '检查楼内网络与供电', en: 'Check the building’s network and power' },
  device_tamper: { zh: '核查设备是否被拆动', en: 'Check whether the device was tampered with' },
};

/**
 * The server's lists, in its order. The tables above are checked against the server's types (every value, no
 * other), so a new outcome or role on the server fails the console's type check until it is translated here.
 */
export const OUTCOMES = Object.keys(OUTCOME) as Outcome[];
export const VISIT_OUTCOMES = Object.keys(VISIT_OUTCOME) as VisitOutcome[];
export const ROLES = Object.keys(ROLE) as Role[];
export const NOTIFICATION_STATUSES = Object.keys(NOTIFICATION_STATUS) as NotificationStatus[];
export const COLOURS = Object.keys(COLOUR) as Colour[];

function label(table: Labels, value: string | undefined): string {
  if (value === undefined) return '';
  return table[value]?.[settings.get().lang] ?? value;
}

export const severityLabel = (s: string) => label(SEVERITY, s);
export const statusLabel = (s: string) => label(STATUS, s);
export const colourLabel = (c: string | undefined) => label(COLOUR, c);
export const colourClassLabel = (c: string | undefined) => label(COLOUR_CLASS, c);
const CLOSED_OTHER: Labels = {
  auto_cleared: { zh: '情况已自行解除', en: 'Cleared by itself' },
  cancelled: { zh: '已撤销', en: 'Cancelled' },
};
export const outcomeLabel = (o: string | undefined) =>
  o !== undefined && o in CLOSED_OTHER ? label(CLOSED_OTHER, o) : label(OUTCOME, o);
export const visitOutcomeLabel = (o: string) => label(VISIT_OUTCOME, o);
export const roleLabel = (r: string) => label(ROLE, r.replace(/\s*\(.*\)$/, ''));
export const notificationStatusLabel = (s: string) => label(NOTIFICATION_STATUS, s);
export const timelineActionLabel = (a: string) => label(TIMELINE_ACTION, a);
export const viaLabel = (v: string) => label(VIA, v);
export const deviceStatusLabel = (s: string) => label(DEVICE_STATUS, s);
export const commandStatusLabel = (s: string) => label(COMMAND_STATUS, s);
export const fieldLabel = (f: string) => label(FIELD, f);
export const commandLabel = (c: string) => label(COMMAND, c);
export const kindLabel = (k: string | undefined) => label(KIND, k);
export const categoryLabel = (c: string) => label(CATEGORY, c);
export const accessKindLabel = (k: string) => label(ACCESS_KIND, k);
export const drillTypeLabel = (x: string) => label(DRILL_TYPE, x);
export const drillStatusLabel = (x: string) => label(DRILL_STATUS, x);
export const injectKindLabel = (x: string) => label(INJECT_KIND, x);
export const injectStateLabel = (x: string) => label(INJECT_STATE, x);
export const taskStatusLabel = (x: string) => label(TASK_STATUS, x);
export const objectiveResultLabel = (x: string) => label(OBJECTIVE_RESULT, x);
export const ratingLabel = (x: string) => label(RATING, x);
export const RATINGS = Object.keys(RATING) as Rating[];

/** A server text in both languages (scenario names, inject titles, objectives): the current language's. */
export function bi(text: { zh: string; en: string } | undefined): string {
  if (!text) return '';
  return text[settings.get().lang] || text.zh;
}

export function alertTitle(type: string): string {
  return templateTitle(type, settings.get().lang);
}

export function todoText(type: string, category: string): string {
  const todo = TODO[type]?.[settings.get().lang];
  if (todo) return todo;
  return settings.get().lang === 'zh'
    ? `请核实处理（${categoryLabel(category)}）`
    : `Please check (${categoryLabel(category)})`;
}

// ------------------------------------------------------------------ time

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(style: 'time' | 'datetime' | 'date' | 'short'): Intl.DateTimeFormat {
  const { lang, tz } = settings.get();
  const key = `${lang}|${tz}|${style}`;
  let f = formatters.get(key);
  if (!f) {
    const base: Intl.DateTimeFormatOptions = { timeZone: tz, hourCycle: 'h23' };
    const opts: Intl.DateTimeFormatOptions =
      style === 'time'
        ? { ...base, hour: '2-digit', minute: '2-digit', second: '2-digit' }
        : style === 'date'
          ? { ...base, year: 'numeric', month: '2-digit', day: '2-digit' }
          : style === 'short'
            ? { ...base, month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' }
            : {
                ...base,
                year: 'numeric',
                month: '2-digit',
                day: '2-digit',
                hour: '2-digit',
                minute: '2-digit',
                second: '2-digit',
              };
    try {
      f = new Intl.DateTimeFormat(lang === 'zh' ? 'zh-CN' : 'en-GB', opts);
    } catch {
      // an unknown time zone: the browser's own
      f = new Intl.DateTimeFormat(lang === 'zh' ? 'zh-CN' : 'en-GB', { ...opts, timeZone: undefined });
    }
    formatters.set(key, f);
  }
  return f;
}

function toMs(v: string | number | Date): number {
  return typeof v === 'number' ? v : v instanceof Date ? v.getTime() : Date.parse(v);
}

/** Date and time in the community's time zone: 2024/05/01 08:12:03 */
export function fmtDateTime(v: string | number | Date | undefined): string {
  if (v === undefined) return '—';
  const ms = toMs(v);
  return Number.isNaN(ms) ? String(v) : formatter('datetime').format(ms);
}

/** Month, day and time: 05/01 08:12 — today shows the time only */
export function fmtShort(v: string | number | undefined): string {
  if (v === undefined) return '—';
  const ms = toMs(v);
  if (Number.isNaN(ms)) return String(v);
  if (formatter('date').format(ms) === formatter('date').format(Date.now())) return formatter('time').format(ms);
  return formatter('short').format(ms);
}

export function fmtDate(v: string | number | undefined): string {
  if (v === undefined) return '—';
  const ms = toMs(v);
  return Number.isNaN(ms) ? String(v) : formatter('date').format(ms);
}

/** A duration: 45秒 / 3分12秒 / 2小时5分 / 1天3小时 */
export function fmtAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return t('age_s', { s });
  const m = Math.floor(s / 60);
  if (m < 60) return t('age_m', { m, s: s % 60 });
  const h = Math.floor(m / 60);
  if (h < 24) return t('age_h', { h, m: m % 60 });
  return t('age_d', { d: Math.floor(h / 24), h: h % 24 });
}

/** Drill time (seconds since the start): +01:30, +1:02:05 */
export function fmtDrillTime(s: number | undefined | null, sign = true): string {
  if (s === undefined || s === null || Number.isNaN(s)) return '—';
  const total = Math.max(0, Math.floor(s));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  const two = (n: number) => String(n).padStart(2, '0');
  return `${sign ? '+' : ''}${h ? `${h}:` : ''}${two(m)}:${two(sec)}`;
}

/** A duration in seconds, rounded for statistics: 42秒 / 3分12秒 / 1小时5分 */
export function fmtSeconds(s: number | undefined | null): string {
  if (s === undefined || s === null || Number.isNaN(s)) return '—';
  return fmtAge(s * 1000);
}

/** The wall clock `local` ("2024-05-01T18:00", as a datetime-local input gives it) in time zone `tz` → epoch ms. */
export function zonedToEpoch(local: string, tz: string = settings.get().tz): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(local);
  if (!m) return undefined;
  const asUtc = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]));
  // the zone's offset at that moment, applied twice to settle across a DST change
  let guess = asUtc - offsetOf(asUtc, tz);
  guess = asUtc - offsetOf(guess, tz);
  return guess;
}

/** The wall clock of `ms` in `tz` as a datetime-local value. */
export function epochToZoned(ms: number, tz: string = settings.get().tz): string {
  const shifted = new Date(ms + offsetOf(ms, tz));
  return shifted.toISOString().slice(0, 16);
}

function offsetOf(ms: number, tz: string): number {
  try {
    const parts = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    }).formatToParts(ms);
    const get = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
    const wall = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
    return wall - Math.floor(ms / 1000) * 1000;
  } catch {
    return -new Date(ms).getTimezoneOffset() * 60_000;
  }
}
