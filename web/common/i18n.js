// trustgate interface texts: the zh/en dictionary of generic words, the deployment's own words
// (labels for its codes, texts for its pages), the language toggle.  Nothing here belongs to one
// deployment: its title, greeting, example questions and login hint come from the config.
// (Elements are built by /common/dom.js, the connection indicator is in /common/events.js.)
const D = {
  'lang.toggle': ['EN', '中文'],
  'conn.live': ['实时', 'live'],
  'conn.connecting': ['连接中…', 'connecting…'],
  'conn.reconnecting': ['重连中…', 'reconnecting…'],
  'conn.off': ['已断开', 'offline'],
  'err.network': ['网络错误，请稍后重试', 'Network error, please retry'],
  'loading': ['加载中…', 'Loading…'],

  // chat page (chat.title and chat.intro when the config's web.texts has none)
  'chat.title': ['智能客服', 'assistant'],
  'chat.console': ['审核台 →', 'Console →'],
  'chat.intro': ['您好！我是智能客服，请问有什么可以帮您？涉及重大决定时会由人工复核。',
    'Hello! How can I help? Important decisions are checked by a person.'],
  'chat.examples': ['试试这些问题：', 'Try these:'],
  'chat.placeholder': ['输入您的问题，Enter 发送，Shift+Enter 换行', 'Type your question — Enter to send, Shift+Enter for a new line'],
  'chat.send': ['发送', 'Send'],
  'chat.thinking': ['正在回复…', 'Replying…'],
  'chat.sources': ['来源', 'Sources'],
  'who.user': ['您', 'You'],
  'who.bot': ['智能客服', 'Assistant'],
  'who.agent': ['人工客服', 'Human agent'],
  'who.system': ['系统', 'System'],
  'mark.held': ['等待人工处理', 'Waiting for a person'],
  'mark.decided': ['人工已复核', 'Reviewed by a person'],
  'mark.handed_off': ['已转人工', 'Transferred to a human agent'],

  // console: chrome and login
  'console.title': ['审核台', 'review console'],
  'nav.queue': ['审核队列', 'Queue'],
  'nav.handoffs': ['人工接管', 'Hand-offs'],
  'nav.supervisor': ['主管看板', 'Supervisor'],
  'nav.governance': ['实验与公平性', 'Experiments & fairness'],
  'nav.audit': ['审计日志', 'Audit log'],
  'audit.title': ['审计日志：签名的树头', 'Audit log: the signed tree head'],
  'audit.head': ['当前检查点（C2SP tlog-checkpoint，Ed25519 签名）', 'Current checkpoint (C2SP tlog-checkpoint, signed with Ed25519)'],
  'audit.size': ['日志 {o} 当前共 {n} 条记录。', 'Log {o} holds {n} records.'],
  'audit.key': ['验证公钥', 'Verifier key'],
  'audit.howto': ['审计方保存检查点；之后用下面的命令核对日志只增未改（RFC 6962 一致性证明）：', 'An auditor keeps checkpoints; later this command checks that the log only grew and nothing recorded changed (RFC 6962 consistency proof):'],
  'role.auditor': ['审计员', 'auditor'],
  'logout': ['退出', 'Log out'],
  'login.title': ['登录审核台', 'Sign in to the console'],
  'login.user': ['用户名', 'User name'],
  'login.password': ['密码', 'Password'],
  'login.submit': ['登录', 'Sign in'],
  'role.reviewer': ['审核员', 'reviewer'],
  'role.agent': ['人工客服', 'agent'],
  'role.supervisor': ['主管', 'supervisor'],
  'role.user': ['客户', 'Customer'],
  'role.assistant': ['智能客服', 'Assistant'],

  // queue
  'queue.title': ['审核队列', 'Review queue'],
  'queue.filter': ['状态', 'State'],
  'queue.count': ['共 {n} 条', '{n} tasks'],
  'queue.customer': ['客户待办', 'Customer-facing'],
  'queue.internal': ['内部队列', 'Internal queues'],
  'queue.empty': ['暂无任务', 'Nothing here'],
  'col.queue': ['队列', 'Queue'],
  'col.kind': ['类型', 'Kind'],
  'col.priority': ['优先级', 'Priority'],
  'col.tags': ['风险标签', 'Risk tags'],
  'col.question': ['客户问题', 'Question'],
  'col.claimed': ['认领人', 'Claimed by'],
  'col.sla': ['SLA 剩余', 'SLA left'],
  'sla.expired': ['已超时', 'expired'],
  'sla.none': ['—', '—'],
  'state.open': ['待处理', 'open'],
  'state.pending': ['待认领', 'pending'],
  'state.claimed': ['已认领', 'claimed'],
  'state.decided': ['已决定', 'decided'],
  'state.handed_off': ['已转人工', 'handed off'],
  'state.closed': ['已结束', 'closed'],
  'kind.review': ['审核草稿', 'review draft'],
  'kind.human_decision': ['人工决定', 'human decision'],
  'kind.follow_up': ['待跟进', 'follow-up'],
  'kind.handoff': ['转人工', 'hand-off'],
  // trustgate's own queues; a deployment's queues are named by its labels
  'queue.follow_up': ['人工跟进', 'follow-up'],
  'queue.human_agent': ['人工客服', 'human agent'],
  'tier.vip': ['VIP', 'VIP'],

  // task view
  'task.back': ['← 返回队列', '← Back to queue'],
  'task.question': ['客户问题', 'Customer question'],
  'task.conversation': ['此前对话', 'Conversation so far'],
  'task.draft': ['AI 草稿', 'AI draft'],
  'task.noDraft': ['AI 不得就此作出决定，请人工撰写答复（见“审核操作”）。',
    'AI may not decide this: write the answer yourself (under Decision).'],
  'task.holding': ['已发给客户的等待提示', 'Holding reply sent to the customer'],
  'task.promised': ['已答应客户（稍后答复）：', 'What the customer was promised:'],
  'task.noDraftFollowUp': ['AI 没有给出答复，客户正在等待：请在“审核操作”中写出答复，发送后它将替换客户看到的这条等待提示。',
    'The AI gave no answer and the customer is waiting: write the answer under Decision; it replaces this holding reply on the customer’s screen.'],
  'task.noDraftHandoff': ['没有 AI 答复可用：请在下方直接回复客户。', 'No AI answer to use: reply to the customer below.'],
  'task.approveNoDraft': ['没有 AI 草稿可批准：请在下方写出答复。', 'No AI draft to approve: write the answer below.'],
  'task.approveNoPromise': ['待跟进的承诺没有可批准的草稿：请在下方写出答复。', 'A promise to follow up has no draft to approve: write the answer below.'],
  'task.write': ['撰写答复', 'Write the answer'],
  'task.sendAnswer': ['发送答复', 'Send answer'],
  'task.answerPh': ['写给客户的答复…', 'Your answer to the customer…'],
  'task.answerPromisePh': ['写给客户的答复，将替换等待提示…', 'Your answer to the customer; it replaces the holding reply…'],
  'task.addOnSend': ['发送时将自动加上：', 'Added automatically when sent: '],
  'task.addAtStart': ['（开头）', ' (at the start)'],
  'task.addAtEnd': ['（结尾）', ' (at the end)'],
  'task.addOnce': ['答复里已有的不会重复添加。', 'Not added twice if your answer already has it.'],
  'task.evidence': ['证据段落', 'Evidence'],
  'task.noEvidence': ['无引用证据', 'No evidence cited'],
  'task.source': ['查看来源', 'View source'],
  'task.hits': ['命中规则', 'Policy hits'],
  'task.trigger': ['触发', 'trigger'],
  'task.why': ['待审原因', 'Why it is held'],
  'task.cited': ['已引用', 'cited'],
  'trig.money': ['金额', 'amount'],
  'trig.pii': ['个人信息', 'personal data'],
  'trig.piiMasked': ['（已打码）', '(masked)'],
  'trig.text': ['关键词', 'words'],
  'trig.norm': ['关键词', 'words'],
  'trig.draft': ['回答中的文字', 'in the answer'],
  'trig.conversation': ['此前对话中', 'earlier in the conversation'],
  'trig.tool_calls': ['工具调用', 'tool call'],
  'trig.intent': ['意图置信度', 'intent confidence'],
  'trig.intent_confidence': ['意图置信度', 'intent confidence'],
  'trig.confidence': ['回答置信度', 'answer confidence'],
  'trig.evidence.best_score': ['最佳证据得分', 'best evidence score'],
  'trig.evidence.count': ['证据条数', 'evidence passages'],
  'trig.money.count': ['金额个数', 'amounts'],
  'trig.degradations': ['降级次数', 'degradations'],
  'trig.draft.ungrounded': ['无依据数字', 'unsupported numbers'],
  'trig.draft.length': ['回答字数', 'answer length'],
  'trig.tool.count': ['工具调用次数', 'tool calls'],
  'trig.channel': ['渠道', 'channel'],
  'trig.tier': ['客户等级', 'customer tier'],
  'trig.draft.language': ['回答语言', 'answer language'],
  'trig.not': ['条件不成立', 'a condition that did not hold'],
  'act.review': ['人工复核', 'review'],
  'act.human_decision': ['人工决定', 'human decision'],
  'act.refuse': ['拒答', 'refuse'],
  'act.script': ['话术', 'script'],
  'act.prefix': ['前置声明', 'prefix'],
  'act.suffix': ['后置声明', 'suffix'],
  'act.redact': ['打码', 'redact'],
  'act.tag': ['标签', 'tag'],
  'task.intent': ['意图与关键词', 'Intent and top tokens'],
  'task.ungrounded': ['无依据陈述：{n} 处', 'Ungrounded claims: {n}'],
  'task.tags': ['风险标签', 'Risk tags'],
  'task.events': ['处理记录', 'Timeline'],
  'task.decide': ['审核操作', 'Decision'],
  'task.claimedBy': ['认领人：{u}', 'Claimed by {u}'],
  'task.claimedMe': ['已由您认领', 'Claimed by you'],
  'task.unclaimed': ['尚未认领', 'Not claimed yet'],
  'task.attest': ['请确认以下声明：', 'Confirm every statement:'],
  'task.tickAll': ['勾选全部声明后才能提交。', 'Tick every statement to enable the decision.'],
  'task.claim': ['认领', 'Claim'],
  'task.approve': ['批准', 'Approve'],
  'task.edit': ['修改后批准', 'Edit & approve'],
  'task.editSubmit': ['发送修改后的答复', 'Send edited answer'],
  'task.reject': ['驳回', 'Reject'],
  'task.rejectReason': ['驳回理由', 'Reason for rejecting'],
  'task.rejectSubmit': ['确认驳回', 'Confirm reject'],
  'task.decision': ['决定', 'Decision'],
  'task.answer': ['最终答复', 'Final answer'],
  'task.replies': ['与客户的对话（转人工后）', 'With the customer (after the hand-off)'],
  'outcome.decided': ['已决定：{l}（{a}）', 'decided: {a}'],
  'outcome.state': ['状态：{l}（{s}）', 'state: {s}'],
  'action.approve': ['批准', 'approve'],
  'action.edit': ['修改后批准', 'edit'],
  'action.reject': ['驳回', 'reject'],
  'err.emptyAnswer': ['请填写答复内容', 'Please write the answer'],
  'err.emptyReason': ['请填写驳回理由', 'Please give a reason'],
  'err.emptyReply': ['请填写回复内容', 'Please write a reply'],

  // hand-offs
  'handoffs.title': ['人工接管', 'Hand-offs'],
  'handoffs.empty': ['暂无转人工的会话', 'No hand-offs'],
  'handoffs.placeholder': ['给客户的回复…', 'Reply to the customer…'],
  'handoffs.send': ['发送回复', 'Send reply'],
  'handoffs.close': ['结束接管', 'Close'],
  'handoffs.page': ['第 {a}–{b} 条，共 {n} 条', '{a}–{b} of {n}'],
  'handoffs.prev': ['上一页', 'Previous'],
  'handoffs.next': ['下一页', 'Next'],
  'handoffs.more': ['还有更早的接管未列出', 'Older hand-offs are not listed'],
  'handoffs.waiting': ['客户等待回复', 'customer waiting'],
  'handoffs.overdue': ['超时 {d}', '{d} overdue'],
  'handoffs.left': ['剩余 {d}', '{d} left'],
  'handoffs.expand': ['展开', 'Expand'],

  // governance
  'gov.title': ['发布、公平性与实验', 'Releases, fairness and experiments'],
  'gov.open': ['发布未冻结', 'Releases open'],
  'gov.lastChange': ['（{by} 于 {t} 变更）', '(last changed by {by} at {t})'],
  'gov.frozen': ['发布已冻结（{by}）：{why}', 'Releases frozen by {by}: {why}'],
  'gov.unfreeze': ['解除冻结', 'Unfreeze'],
  'gov.unfreezeWhy': ['解除冻结的理由（写入审计日志）', 'Why releases may resume (kept in the audit log)'],
  'gov.whyShort': ['请写明理由（至少 10 个字符）', 'Give a reason of at least 10 characters'],
  'gov.fairness': ['公平性闸门', 'Fairness gate'],
  'gov.fairNote': ['按群体比较：智能客服直接答复的比例，以及复核员原样批准智能草稿的比例；差异超过 {l} 且置信区间不含该值、每组至少 {m} 次时触发，统计近 {d} 天。', 'Per group: the share of turns answered by AI at once, and the share of reviewed AI drafts approved as written; a gate closes when the difference exceeds {l} with its interval clear of it and every group has {m} turns (last {d} days).'],
  'gov.outcome.delivered': ['直接答复', 'Answered at once'],
  'gov.outcome.review_approved': ['复核批准', 'Approved in review'],
  'gov.rateBy.delivered': ['各群体直接答复率（%）', 'Answered by AI at once, per group (%)'],
  'gov.rateBy.review_approved': ['各群体复核批准率（%）', 'Drafts approved in review, per group (%)'],
  'gov.gateOpen': ['通过', 'open'],
  'gov.gateClosed': ['已触发', 'closed'],
  'gov.dpd': ['人口均等差 {d}（95% 区间 {lo}–{hi}），比值 {r}，{n} 次，最小组 {g}', 'parity difference {d} (95% interval {lo}–{hi}), ratio {r}, {n} turns, smallest group {g}'],
  'gov.rate': ['答复率', 'rate'],
  'gov.noAttrs': ['未配置敏感属性（fairness.attributes）', 'No sensitive attributes configured (fairness.attributes)'],
  'gov.experiment': ['实验', 'Experiment'],
  'gov.variant': ['分组', 'Variant'],
  'gov.share': ['占比', 'Share'],
  'gov.answeredBy': ['答复版本', 'Answered by'],
  'gov.inForce': ['现行版本', 'release in force'],
  'gov.metric': ['指标', 'Metric'],
  'gov.sigFrom': ['自第 {d} 次观察显著', 'significant from look {d}'],
  'gov.sequence': ['{v} − {c}：解决率差（点）及其置信序列，逐次观察', '{v} − {c}: difference in resolution (points) inside its confidence sequence, look by look'],
  'gov.srm': ['样本比例失衡：分流有问题，结果不可信', 'Sample-ratio mismatch: the split is broken; do not trust these results'],
  'gov.noExperiments': ['未配置实验', 'No experiments configured'],
  'gov.releases': ['发布登记', 'Release registry'],
  'gov.noReleases': ['尚无登记的发布（trustgate release propose）', 'No releases registered yet (trustgate release propose)'],
  'gov.look': ['观察间隔', 'Look every'],
  'gov.look.100': ['每 100 次对话', '100 turns'],
  'gov.look.1h': ['每小时', 'hour'],
  'gov.look.1d': ['每天', 'day'],
  'metric.resolved': ['无人工解决率', 'resolved without a person'],
  'metric.far': ['首答准确率（已评判）', 'first-response accuracy (judged)'],
  'metric.rated_good': ['客户好评率', 'rated good by the customer'],
  'metric.handed_off': ['转人工率', 'handed off'],
  'metric.reviewed': ['复核率', 'reviewed'],
  'metric.bad_rating': ['差评率', 'bad rating'],
  'metric.latency_ms': ['处理时延（毫秒）', 'latency (ms)'],
  'metric.cost': ['每次对话成本', 'cost per turn'],

  // supervisor
  'sup.title': ['主管看板', 'Supervisor'],
  'sup.since': ['统计自 {t}', 'since {t}'],
  'sup.created': ['新建', 'Created'],
  'sup.decided': ['已决定', 'Decided'],
  'sup.handedOff': ['转人工（SLA 超时）', 'Handed off (SLA breaches)'],
  'sup.open': ['待处理', 'Open'],
  'sup.median': ['决定用时中位数', 'Median time to decision'],
  'sup.p95': ['决定用时 P95', 'p95 time to decision'],
  'sup.byHour': ['近 24 小时每小时量', 'Volume per hour, last 24 h'],
  'sup.byReviewer': ['各审核员决定数', 'Decisions per reviewer'],
  'sup.byAction': ['决定类型', 'Decisions by action'],
  'sup.byQueue': ['各队列', 'Per queue'],
  'sup.noData': ['暂无数据', 'No data'],
  'sup.far': ['每日首答准确率（复核与客户评价，%）', 'Daily first-response accuracy (reviews and ratings, %)'],
  'sup.farAlert': ['告警：准确率已连续 {d} 天低于 {m}%，且无改善趋势', 'Alert: accuracy below {m}% for {d} days with no improving trend'],
  'sup.decisions': ['决定数', 'decisions'],
};

const KEY = 'trustgate.lang';
let lang = 'zh';
try { if (localStorage.getItem(KEY) === 'en') lang = 'en'; } catch { /* storage unavailable */ }

export const getLang = () => lang;

// Translate a key, substituting {name} placeholders.
export function t(key, vars) {
  let s = D[key] ? D[key][lang === 'en' ? 1 : 0] : key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`{${k}}`, String(v));
  return s;
}

// Label for a code (queue, state, role...): the translation if known, else the code itself.
export const tl = (prefix, code) => (D[`${prefix}.${code}`] ? t(`${prefix}.${code}`) : String(code ?? ''));

// The table of {LANG: TABLE} for the interface's language; a table for "zh-CN" or "zh-Hans"
// serves "zh" too.  null when there is none.
function forLang(tables) {
  if (tables[lang]) return tables[lang];
  const k = Object.keys(tables).find((x) => x.toLowerCase().split('-')[0] === lang);
  return k ? tables[k] : null;
}

// The deployment's own words for its codes (the config's `labels:`, {LANG: {CODE: TEXT}}), set
// once the console has read them.
let labels = {};
export function setLabels(table) {
  labels = table && typeof table === 'object' ? table : {};
}
const labelTable = () => forLang(labels);

// The deployment's own texts for its pages (the config's web.texts, {LANG: {NAME: TEXT or
// [TEXT]}}: chat_title, chat_intro, chat_examples, login_hint), undefined until the page has
// read them: elements showing one stay empty until then, so a generic word never flashes
// before the deployment's.
let texts;
export function setTexts(table) {
  texts = table && typeof table === 'object' ? table : {};
  applyI18n();
}

// The deployment's text called name in the interface's language (a string, or a list for
// chat_examples); null when it gives none, or before the texts are read.
export function pageText(name) {
  const v = texts ? forLang(texts)?.[name] : null;
  if (typeof v === 'string') return v || null;
  return Array.isArray(v) && v.length ? v.filter((x) => typeof x === 'string' && x) : null;
}

// A code (tag, event, rule id, queue) in the interface's language: the deployment's label for
// this kind of code ("queue.medical" when prefix is "queue"), else its label for the code, else
// the built-in one under prefix (when given), else the code itself.  A queue and a tag may share
// a name and mean different things.
export function label(code, prefix) {
  const s = String(code ?? '');
  const table = labelTable();
  const own = (prefix ? table?.[`${prefix}.${s}`] : null) ?? table?.[s];
  if (typeof own === 'string' && own) return own;
  return prefix ? tl(prefix, s) : s;
}

// Re-translate every element marked with data-i18n / data-i18n-ph, and show the deployment's
// text in each marked data-text (its generic word data-text-default when the deployment gives
// none; hidden when there is neither).
export function applyI18n(root = document) {
  document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN';
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-ph]')) el.placeholder = t(el.dataset.i18nPh);
  for (const el of root.querySelectorAll('[data-text]')) {
    const own = pageText(el.dataset.text);
    const s = texts === undefined ? '' : typeof own === 'string' ? own : el.dataset.textDefault ? t(el.dataset.textDefault) : '';
    el.textContent = s;
    el.hidden = !s;
  }
}

// Wire the zh/en toggle button; onChange re-renders dynamic views.
export function initLangToggle(btn, onChange) {
  const sync = () => { btn.textContent = t('lang.toggle'); };
  sync();
  applyI18n();
  btn.addEventListener('click', () => {
    lang = lang === 'en' ? 'zh' : 'en';
    try { localStorage.setItem(KEY, lang); } catch { /* ignore */ }
    sync();
    applyI18n();
    if (onChange) onChange();
  });
}
