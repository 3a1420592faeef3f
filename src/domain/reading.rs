//! Reading one sentence: which figure is which requirement.
//!
//! [`quantity`] finds the figures; this module finds the labels that say what a figure
//! measures ("p99", "average", "RTO", "error rate", "uptime", and the look-alikes that are not
//! targets: a mean time to recover, a support response time, a cache hit rate, a budget...),
//! then binds each figure to its nearest compatible label, whichever side it stands on, one
//! label per figure ("RTO 4 h, RPO 15 min" gives each its own). A figure no label explains is
//! not guessed: it is returned as unread, with the reason. A latency with no statistic is not
//! guessed either: it stays `other`, with a note naming what is missing.

use std::sync::LazyLock;

use regex::Regex;

use super::quantity::{self, Class, Cmp, Figure, Token};
use super::requirement::{fmt_num, Kind, Op};

/// What a label says a figure measures.
#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    /// A latency statistic: `avg`, or a percentile as written (`99`, `99.9`, `50`).
    Stat(String),
    /// "latency", "response time": a latency, statistic unknown.
    Latency,
    /// "throughput", "load": a request rate (for bare numbers in tables).
    Throughput,
    Success,
    Error,
    Availability,
    Downtime,
    Rto,
    Rpo,
    /// A look-alike: why its figure is not a target, and the classes it claims.
    Ignore(&'static str, &'static [Class]),
}

impl Label {
    fn takes(&self, c: Class) -> bool {
        match self {
            Label::Stat(_) | Label::Latency | Label::Downtime | Label::Rto | Label::Rpo => c == Class::Time,
            Label::Success | Label::Error | Label::Availability => c == Class::Percent,
            Label::Throughput => c == Class::Rate,
            Label::Ignore(_, classes) => classes.contains(&c),
        }
    }

    fn sink(&self) -> bool {
        matches!(self, Label::Ignore(..))
    }
}

/// A label where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub label: Label,
}

fn re(p: &str) -> Regex {
    Regex::new(&format!("(?i){p}")).expect("static label pattern")
}

const TIME: &[Class] = &[Class::Time];
const PCT: &[Class] = &[Class::Percent];
const RATE: &[Class] = &[Class::Rate];
const ALL: &[Class] = &[Class::Time, Class::Percent, Class::Rate];
const PCT_RATE: &[Class] = &[Class::Percent, Class::Rate];

/// Look-alikes, found first: a label of another kind inside one is not a label.
static IGNORE: LazyLock<Vec<(Regex, &'static str, &'static [Class])>> = LazyLock::new(|| {
    vec![
        (
            re(r"\bmean\s+time\s+(?:to|between)\s+\w+(?:\s+\w+)?|\bmt(?:tr|bf|td|ta|tf|tre|ti)\b"),
            "a mean time to recover or repair is an operations figure, not a latency or an RTO",
            TIME,
        ),
        (
            re(
                r"\b(?:support|help\s?desk|service\s+desk|tickets?|severity\s*\d|sev\s*\d|first\s+response|p[1-4]\s+(?:incidents?|issues?|tickets?))\b",
            ),
            "a support response time, not the service's latency",
            TIME,
        ),
        (
            re(r"\bcache\s+hit(?:\s+(?:rate|ratio))?\b|\bhit\s+(?:rate|ratio)\b"),
            "a cache hit rate, not a success rate",
            PCT,
        ),
        (
            re(r"\b(?:cpu|memory|ram|disk|utili[sz]ation|utili[sz]ed|headroom|saturation)\b"),
            "a resource utilisation figure, not a target flow measures",
            PCT,
        ),
        (
            re(
                r"\b(?:defects?|bugs?|crash(?:es)?|churn|conversion|bounce|coverage|flaky)(?:\s+(?:rate|ratio|density))?\b",
            ),
            "a defect or business rate, not the service's success rate",
            PCT,
        ),
        (
            re(
                r"\b(?:error\s+)?budgets?\b|\bбюджет\w*|\b(?:costs?|price|pricing|spend|service\s+credits?|credits?|refunds?|penalt(?:y|ies)|discounts?)\b",
            ),
            "a budget, cost or service credit, not a target",
            ALL,
        ),
        (
            re(r"\b(?:time-?outs?|ttl|keep-?alive|retry|retries|backoff|deadline)\b"),
            "a timeout or retry setting, not a target",
            TIME,
        ),
        (
            re(
                r"\bevery\s+(?:\d|other|few)|\b(?:retention|retain(?:ed)?|kept\s+for|hourly|daily|nightly|weekly|interval|window|schedule[sd]?|ago|maintenance)\b",
            ),
            "a schedule, retention or window, not a target",
            TIME,
        ),
        (
            re(r"\brate[\s-]*limit\w*|\bthrottl\w*|\bquotas?\b|\bburst\s+limit\b|\bconcurren\w*"),
            "a limit to enforce, not a capacity target",
            RATE,
        ),
        (
            re(r"\bgrow(?:th|s|ing)?\b|\byear[\s-]over[\s-]year\b|\bincrease\s+(?:of|by)\b"),
            "a growth figure, not a target",
            PCT_RATE,
        ),
    ]
});

static STAT_P: LazyLock<Regex> = LazyLock::new(|| re(r"\bt?p(?P<p>\d{2}(?:\.\d+)?)\b"));
static STAT_NTH: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?P<p>\d{1,3}(?:\.\d+)?)(?:st|nd|rd|th)?[\s-]*percentiles?\b"));
static STAT_PCTL: LazyLock<Regex> = LazyLock::new(|| re(r"\bpercentile\s+(?P<p>\d{1,2}(?:\.\d+)?)\b"));
/// "85-й перцентиль", "99分位", "99번째 백분위": percentiles in other languages.
static STAT_INTL: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?P<p>\d{1,2}(?:\.\d+)?)\s*-?\s*(?:й|го|ый|ой)?\s*(?:перц\w*|процентил\w*)|(?P<q>\d{1,2}(?:\.\d+)?)\s*(?:分位|百分位|번째\s*백분위|백분위)",
    )
});
static STAT_MEDIAN: LazyLock<Regex> = LazyLock::new(|| re(r"\bmedian\b"));
static STAT_AVG: LazyLock<Regex> = LazyLock::new(|| re(r"\b(?:typical\s+)?(?:average|mean|avg)\b"));

static KINDS: LazyLock<Vec<(Regex, Label)>> = LazyLock::new(|| {
    vec![
        (
            re(
                r"\b(?:latency|latencies|response\s+times?|responses?|respond(?:s|ed|ing)?|round[\s-]?trips?(?:\s+times?)?|page\s+load(?:\s+times?)?|load\s+times?|answer\s+times?|time\s+to\s+first\s+byte|ttfb|processing\s+times?)\b",
            ),
            Label::Latency,
        ),
        (re(r"\b(?:throughput|load|traffic|rps|tps|qps)\b"), Label::Throughput),
        (re(r"\bsuccess(?:ful(?:ly)?)?(?:\s+(?:rate|ratio))?\b|\bsucceed(?:s|ed)?\b"), Label::Success),
        (
            re(
                r"\b(?:errors?|failures?|faults?)(?:\s+(?:rate|ratio|percentage))?\b|\b5xx(?:\s+(?:errors?|rate|responses))?\b|\bfailed\s+(?:requests|calls)\b|\bfail(?:s|ed|ing)?\b",
            ),
            Label::Error,
        ),
        (re(r"\bavailab(?:ility|le)\b|\buptime\b|\bnines\b"), Label::Availability),
        (
            re(
                r"\b(?:downtime|interruptions?|interrupted|disruptions?|disrupted|unavailability|unavailable\s+for|outages?|failover(?:\s+(?:time|downtime|duration|latency))?|fail(?:s|ing)?\s+over|switch(?:es|ing)?\s+over|cut\s*over|restores?\s+service\s+(?:with)?in)\b",
            ),
            Label::Downtime,
        ),
        (
            re(
                r"\brto\b|\brecovery\s+time(?:\s+objective)?\b|\brecover(?:ed|able|s|y)?\s+(?:with)?in\b|\brestored?\s+(?:with)?in\b|\bback\s+online\b|\bserving\s+again\b|\btime\s+to\s+restore\b|\brestore\s+time\b",
            ),
            Label::Rto,
        ),
        (
            re(
                r"\brpo\b|\brecovery\s+point(?:\s+objective)?\b|\bdata\s+loss\b|\blos(?:e|t|ing|s)\b|\bof\s+(?:committed\s+|recent\s+|acknowledged\s+|customer\s+)?(?:data|writes|transactions|updates|records|changes)\b",
            ),
            Label::Rpo,
        ),
    ]
});

/// A negation right before an error label: "do not return 5xx", "without errors".
static NEGATED: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?:\bdo(?:es)?\s+not|\bdid\s+not|\bdon'?t|\bdoesn'?t|\bwithout|\bnever|\bno|\bне|\bбез)\s+(?:\w+\s+)?(?:in\s+)?(?:an?\s+)?$",
    )
});

/// Words that make a figure a wish rather than a commitment: asked, not read.
static UNSURE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:stretch(?:\s+(?:goals?|targets?))?|aspirational|aspiration|nice[\s-]to[\s-]have|ideally|would\s+like|if\s+possible|best[\s-]effort|not\s+yet\s+agreed|to\s+be\s+(?:agreed|confirmed|decided))\b",
    )
});

/// Labels in Russian, Korean, Chinese and Japanese (no word boundaries in CJK text).
static KINDS_INTL: LazyLock<Vec<(Regex, Label)>> = LazyLock::new(|| {
    vec![
        (
            re(
                r"задержк\w*|латентност\w*|врем\w*\s+отклика|врем\w*\s+ответа|응답\s*시간|지연\s*시간|响应时间|響應時間|延迟|延遲|応答時間|レイテンシ",
            ),
            Label::Latency,
        ),
        (re(r"пропускн\w*\s+способност\w*|처리량|吞吐量|スループット"), Label::Throughput),
        (re(r"доступност\w*|가용성|可用性|稼働率"), Label::Availability),
        (re(r"(?:доля|процент)\s+ошиб\w*|ошиб\w*|오류율|에러율|错误率|錯誤率|エラー率"), Label::Error),
        (re(r"恢复时间目标|恢復時間目標|目標復旧時間|복구\s*시간\s*목표|복구\s*시간"), Label::Rto),
        (re(r"恢复点目标|恢復點目標|目標復旧時点|복구\s*시점\s*목표|데이터\s*손실|数据丢失|資料遺失"), Label::Rpo),
        (re(r"простой|다운타임|停机时间|停機時間|ダウンタイム"), Label::Downtime),
    ]
});

/// Words right after a figure that make it today's ("40 ms today", "800 req/s currently").
static CURRENT_AFTER: LazyLock<Regex> = LazyLock::new(|| re(r"^(?:today|currently|presently)$"));

/// Words before a figure (in its clause) that make it a description of today, not a target.
static CURRENT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:current(?:ly)?|today|measured|observed|baseline|achieved|actual(?:ly)?|typical(?:ly)?|historic(?:al|ally)?|last\s+(?:week|month|quarter|year)|as\s+of|was|were|used\s+to|at\s+present|presently)\b",
    )
});

/// Losing one Availability Zone: a requirement without a figure.
pub static AZ: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?:\b(?:loss|lose|losing|lost|failure|outage|fail|failing|down)\s+(?:of\s+)?(?:one|an|a|1|a\s+single|any\s+one|any\s+single|any)\s+(?:availability\s+zones?|azs?)\b|\b(?:az|availability[\s-]zone)\s+(?:failure|outage|loss)s?\b|\b(?:one|an|a|1|a\s+single|any)\s+(?:availability\s+zones?|azs?)\s+(?:fails|failed|goes\s+down|is\s+lost|is\s+down|becomes\s+unavailable|is\s+unavailable)\b)",
    )
});

/// Telling a person that an alarm fired: a notify verb with a person or team after it ("notify
/// the on-call engineer", "page on-call", "alert the operations team"). A requirement only with
/// an alarm word in the same sentence ([`ALARM_WORD`]).
pub static NOTIFY: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:notif(?:y|ies|ied|ying)|page[sd]?|paging|alert(?:s|ed|ing)?|escalate[sd]?|inform(?:s|ed)?|tell|tells)\s+(?:the\s+|a\s+|an\s+|our\s+|its\s+|their\s+)?(?:on[\s-]?call|engineers?|operators?|sres?|responders?|(?:operations|ops|platform|support|sre)\s+(?:team|engineers?)|someone|a\s+person|people|humans?|staff|admins?|administrators?)\b",
    )
});

/// What fires: an alarm, an alert, an incident.
pub static ALARM_WORD: LazyLock<Regex> = LazyLock::new(|| re(r"\b(?:alarms?|alerts?|incidents?|alarm\s+fires)\b"));

/// A notification's bound after its verb: "within 5 minutes", "in under 2 min".
pub static NOTIFY_WITHIN: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:within|in\s+(?:under|less\s+than|at\s+most)|no\s+later\s+than)\s+(?P<n>\d+(?:\.\d+)?)\s*(?P<u>seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h)\b",
    )
});

/// Spread over zones ("multi-AZ", "across 3 Availability Zones") without saying it must survive
/// losing one: a reading to ask about.
pub static MULTI_AZ: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\bmulti[\s-]?(?:az|availability[\s-]zones?)\b|\b(?:across|over|in|spread\s+over)\s+(?:at\s+least\s+)?(?:\d+|two|three|multiple|several)\s+(?:availability\s+zones|azs|zones)\b",
    )
});

/// A response that keeps the service up (after a condition such as "IF an AZ fails").
pub static KEEP_SERVING: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:continue|continues|keep|keeps|remain|remains|stay|stays|still)\s+(?:\w+\s+)?(?:serving|available|working|operating|up|running|online|responsive)\b|\bwithout\s+(?:an?\s+)?(?:outage|interruption|downtime)\b",
    )
});

/// Every label in `text`, look-alikes first; a label inside a look-alike is dropped, and a
/// statistic next to a latency word is one label with it.
pub fn labels(text: &str) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    for (rx, why, classes) in IGNORE.iter() {
        for m in rx.find_iter(text) {
            out.push(Span { start: m.start(), end: m.end(), label: Label::Ignore(why, classes) });
        }
    }
    let mut found: Vec<Span> = Vec::new();
    for rx in [&*STAT_P, &*STAT_NTH, &*STAT_PCTL] {
        for c in rx.captures_iter(text) {
            let m = c.get(0).expect("whole match");
            found.push(Span { start: m.start(), end: m.end(), label: Label::Stat(c["p"].to_string()) });
        }
    }
    for c in STAT_INTL.captures_iter(text) {
        let m = c.get(0).expect("whole match");
        let p = c.name("p").or(c.name("q")).map_or("", |p| p.as_str());
        found.push(Span { start: m.start(), end: m.end(), label: Label::Stat(p.to_string()) });
    }
    for m in STAT_MEDIAN.find_iter(text) {
        found.push(Span { start: m.start(), end: m.end(), label: Label::Stat("50".into()) });
    }
    for m in STAT_AVG.find_iter(text) {
        found.push(Span { start: m.start(), end: m.end(), label: Label::Stat("avg".into()) });
    }
    for (rx, label) in KINDS.iter().chain(KINDS_INTL.iter()) {
        for m in rx.find_iter(text) {
            found.push(Span { start: m.start(), end: m.end(), label: label.clone() });
        }
    }
    found.sort_by_key(|s| (s.start, std::cmp::Reverse(s.end)));
    // A label overlapping a look-alike or a label kept before it is dropped. Look-alikes by
    // start with the furthest end so far; kept labels come in order of start.
    out.sort_by_key(|s| s.start);
    let mut reach = Vec::with_capacity(out.len());
    let mut far = 0;
    for o in &out {
        far = far.max(o.end);
        reach.push(far);
    }
    let ignores = out.len();
    let mut kept_end = 0;
    for s in found {
        let k = out[..ignores].partition_point(|o| o.start < s.end);
        let under_ignore = k > 0 && reach[k - 1] > s.start;
        if !under_ignore && kept_end <= s.start {
            kept_end = s.end;
            out.push(s);
        }
    }
    out.sort_by_key(|s| s.start);
    // "requests that do not return 5xx", "without errors": the successes.
    for s in out.iter_mut().filter(|s| s.label == Label::Error) {
        let mut from = s.start.saturating_sub(48);
        while !text.is_char_boundary(from) {
            from += 1;
        }
        if NEGATED.is_match(&text[from..s.start]) {
            s.label = Label::Success;
        }
    }
    // "Severity 1 support requests receive a response within 1 hour": in a sentence about
    // support, a response is support's, not the service's latency.
    if out.iter().any(|s| matches!(s.label, Label::Ignore(why, _) if why.starts_with("a support response"))) {
        out.retain(|s| s.label != Label::Latency);
    }
    merge_adjacent(text, out)
}

/// "p99 latency", "response time (p95)", "recovery time objective (RTO)": one label.
fn merge_adjacent(text: &str, spans: Vec<Span>) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    for s in spans {
        if let Some(last) = out.last_mut() {
            let between = &text[last.end.min(s.start)..s.start];
            let words = between.split_whitespace().filter(|w| w.chars().any(char::is_alphanumeric)).count();
            // Never across a figure: "RPO: 0 (no data loss)" is a label, its figure, a remark.
            let close =
                words <= 2 && !between.contains([',', ';', '.']) && !between.chars().any(|c| c.is_ascii_digit());
            let merged = match (&last.label, &s.label) {
                (Label::Stat(_), Label::Latency) => Some(last.label.clone()),
                (Label::Latency, Label::Stat(_)) => Some(s.label.clone()),
                (a, b) if a == b && !a.sink() => Some(a.clone()),
                _ => None,
            };
            if let (true, Some(label)) = (close, merged) {
                last.end = s.end;
                last.label = label;
                continue;
            }
        }
        out.push(s);
    }
    out
}

/// What the context gives a sentence: labels from its heading, parent item or table column; a
/// unit for a table cell's bare number; a Min or Max column's comparison.
#[derive(Debug, Clone, Default)]
pub struct Hints {
    /// Nearest first.
    pub labels: Vec<Label>,
    pub bare_unit: Option<(Class, f64)>,
    pub op: Option<Op>,
    /// The condition of an EARS sentence ("WHEN traffic reaches ..."): only a request rate in
    /// it is a requirement.
    pub condition: bool,
    /// The heading, parent item or table column says its figures are targets (Targets, SLOs,
    /// Requirements, Thresholds ...).
    pub targets: bool,
    /// The heading, parent item or table says its figures are not targets, and why (results,
    /// alerts, examples, estimates ...).
    pub not_targets: Option<String>,
    /// The text is a heading: a figure in it is a target only with a comparison or a commitment.
    pub heading: bool,
    /// The row's window column says days or weeks: a share of requests is an availability.
    pub long_window: bool,
    /// A table column names the kind ("| RPO |"): words beside the figure explain it, they do
    /// not make it something else.
    pub column: bool,
}

/// What makes a figure's clause say it is not a target: the family and why.
static NOT_TARGET: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    vec![
        (
            re(
                r"\b(?:reported|measured|observed|achieved|actuals?|statistical\s+analysis|based\s+on\s+(?:our\s+|the\s+)?(?:analysis|data|measurements?|tests?)|saturation\s+point|breaking\s+point|포화점|(?:increases?|increased|grows?|grew|rises?|rose|climbs?|climbed|jumps?|jumped|drops?|dropped|falls?|fell)\s+to|увеличива\w*|растёт|вырос\w*|(?:test\s+)?results?\s*[:(]|results?\s+(?:show|were|was|from|of\s+the)|benchmark(?:ed|s)?|we\s+(?:got|saw|measured)|came\s+in\s+at|during\s+(?:the\s+)?(?:test|run)|peaked\s+at)\b|[✅❌✔✗✘]",
            ),
            "a measured result, not a target",
        ),
        (
            re(
                r"\b(?:alert(?:s|ing|ed)?|alarm(?:s|ing)?|paging|pagerduty|opsgenie|slack|warn(?:ing)?|crit(?:ical)?\s*:|fires?|firing|burn[\s-]?rates?|notif(?:y|ies|ication))\b",
            ),
            "an alert threshold, not a target",
        ),
        (
            re(
                r"(?:\be\.g\.?|\bfor\s+(?:example|instance)\b|\bexamples?\b|\bsuch\s+as\b|\btb[da]\b|\btodo\b|\bmeans\b|\bdefined\s+as\b|\bformula\b|\bplaceholder\b|\b[xX]{3}\b|\b[xX]+\s*ms\b|\billustrative\b|\bnot\s+(?:a\s+)?targets?\b)",
            ),
            "an example or a definition, not a target",
        ),
        (
            re(
                r"\b(?:estimated?|estimates?|breakdown|typically\s+takes|takes\s+(?:about|around|roughly)|calculat\w+)\b|×|\d\s*[*x]\s*\d",
            ),
            "an estimate, a calculation or a step of a breakdown, not a target",
        ),
        (
            re(r"\bcircuit[\s-]?breakers?\b|\btrips?\s+(?:at|when|after)\b|размыка\w*"),
            "a circuit breaker setting, not a target",
        ),
        (
            re(
                r"\bnot\s+(?:achievable|attainable|feasible|possible|in\s+scope|a\s+goal|a\s+requirement|required)\b|\bout\s+of\s+scope\b|\bnon-?goals?\b|달성\s*불가|불가능|不可能|无法达成|невозможн\w*",
            ),
            "out of scope or not achievable, not a target",
        ),
        (
            re(
                r"\b(?:inject(?:s|ed|ing)?|generat(?:es|ed|ing)|ramp(?:s|ed|ing)?(?:\s+up)?|arrival[\s-]rate|offered\s+load|virtual\s+users|vus?)\b",
            ),
            "a load the test applies, not a capacity target",
        ),
        (
            re(
                r"\b(?:replication\s+(?:lag|delay)|sync(?:hroni[sz]ation)?\s+(?:lag|delay)|lag\s+behind)\b|同步延遲|同步延迟|复制延迟|複製延遲|отставани\w*\s+репли\w*|복제\s*지연",
            ),
            "a replication lag, not an RPO (the RPO is the data a restore loses)",
        ),
        (
            re(r"\b(?:satisfaction|adoption|nps|csat|retention\s+rate|engagement|open\s+rate|click[\s-]?through)\b"),
            "a satisfaction or adoption figure, not a success rate",
        ),
        (
            re(r"\b(?:auto[\s-]?scal\w*|scale[sd]?\s+(?:out|up|in|down)|target[\s-]tracking|hpa|set[\s-]?point)\b"),
            "an autoscaling setting, not a target",
        ),
        (
            re(
                r"\bper[\s-](?:client|user|ip|key|token|tenant|account|customer|api\s+key|endpoint|route)\b|\b429\b|\brate[\s-]*limit\w*|\bthrottl\w*",
            ),
            "a per-client rate limit, not a capacity target",
        ),
        (
            re(
                r"\b(?:each|every|per|a\s+single|one)\s+(?:shard|node|instance|server|pod|replica|partition|worker|host|container|task|core|vcpu|cpu)\b",
            ),
            "a capacity per shard or instance, not the service's target",
        ),
        (
            re(
                r"\b(?:scheduled|planned)\s+(?:downtime|maintenance|outages?)\b|\bin\s+a\s+(?:month|year|quarter)\b|\b(?:per|a|each|every)\s+(?:month|week|year|quarter)\b|/\s*(?:mo|month|yr|year|week)\b|\bmonthly\s+downtime\b|\bdowntime\s+(?:per|a)\s+month\b|\ballow(?:ed|s|ance)\b",
            ),
            "a downtime allowance over a period (an error budget), not a failover downtime",
        ),
    ]
});

/// Words a clause reaches on each side of its figure, at most: a sentence with no punctuation
/// is not one clause of a hundred thousand words.
const CLAUSE_REACH: usize = 30;

/// A figure's clause: from the last clause break before it to the next one after it.
fn clause(text: &str, w: &Words, start: usize, end: usize) -> (usize, usize) {
    let toks = &w.toks;
    let (a, b) = (w.at(start), w.at(end));
    let lo = a.saturating_sub(CLAUSE_REACH);
    let window = if lo == 0 { 0 } else { toks[lo].start };
    let start_before = |a: usize| {
        toks[lo..a.clamp(lo, toks.len())]
            .iter()
            .rposition(|t| clause_break(&t.text))
            .map_or(window, |i| toks[lo + i].end)
    };
    // Inside "(e.g., 99.9 % monthly)" or "limits (login: 5/minute, signup: 3/minute)", the clause
    // is the one the parenthesis opens in.
    let open = text[window..start].rfind('(').map(|o| window + o).filter(|&o| !text[o..start].contains(')'));
    let from = match open {
        Some(o) => start_before(w.at(o)),
        None => start_before(a),
    };
    let hi = (b + CLAUSE_REACH).min(toks.len());
    let to = toks[b.min(toks.len())..hi]
        .iter()
        .position(|t| clause_break(&t.text))
        .map_or(if hi == toks.len() { text.len() } else { toks[hi].start }, |i| toks[b + i].start);
    (from, to.max(end))
}

/// Why a figure is not a target, from the words of its clause, if they say so.
fn not_a_target(text: &str, w: &Words, f: &Figure, kind_label: &Label, column: bool) -> Option<&'static str> {
    let (from, to) = clause(text, w, f.start, f.end);
    let c = &text[from..to];
    NOT_TARGET.iter().find_map(|(rx, why)| {
        // A downtime allowance is about downtime; replication lag about data loss.
        if why.starts_with("a downtime allowance") && !matches!(kind_label, Label::Downtime) {
            return None;
        }
        if why.starts_with("a replication lag") && column {
            return None;
        }
        if why.starts_with("a replication lag")
            && !matches!(kind_label, Label::Rpo | Label::Downtime | Label::Rto | Label::Latency | Label::Stat(_))
        {
            return None;
        }
        if why.starts_with("a satisfaction")
            && !matches!(kind_label, Label::Success | Label::Error | Label::Availability)
        {
            return None;
        }
        if why.starts_with("a per-client") && !matches!(kind_label, Label::Throughput) {
            return None;
        }
        if why.starts_with("a capacity per") && !matches!(kind_label, Label::Throughput) {
            return None;
        }
        // "injecting 1100 req/s (above the 1000 req/s SLO)": the SLO is named at its figure.
        if why.starts_with("a load the test") && (!matches!(kind_label, Label::Throughput) || named_at(text, f)) {
            return None;
        }
        if why.starts_with("a measured result") && COMMITTED.is_match(c) && !c.contains(['✅', '❌']) {
            return None;
        }
        rx.is_match(c).then_some(*why)
    })
}

/// "1000 req/s SLO", "a 300 ms target": the figure is named a target where it stands.
fn named_at(text: &str, f: &Figure) -> bool {
    static NAMED: LazyLock<Regex> =
        LazyLock::new(|| re(r"^\s*(?:\w+\s+)?(?:slos?|slas?|targets?|objectives?|goals?|requirements?)\b"));
    NAMED.is_match(&text[f.end..])
}

static OBJECTIVE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?:rto|rpo|recovery\s+(?:time|point)\s+objectives?)\b|恢复|恢復|복구"));

/// A measurement window of days or longer.
pub static LONG_WINDOW: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:over|across|during|in|within)\s+(?:a|any|each|the)?\s*(?:rolling|calendar|trailing)?\s*\d+[\s-]?(?:days?|d|weeks?|w|months?)\b|\b(?:rolling|trailing)\s+\d+[\s-]?(?:days?|d|weeks?|months?)\b|\b(?:per|a|each)\s+(?:month|quarter|year)\b|\bmonthly\b|\bquarterly\b|скользящ\w*\s+\d+\s*(?:дн\w*|дней|недел\w*)|\bза\s+\d+\s*(?:дн\w*|дней)|\bв\s+месяц",
    )
});

/// A sentence that names its figure a target ("**Target:** 1,000 req/s", "production targets
/// 10,000 TPS"): read even in a section of results.
static NAMES_TARGET: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^\W*(?:targets?|slos?|objectives?|goals?|requirements?|thresholds?|цель|целевое\s+значение|목표|目标|目標)\s*:|\b(?:targets?|objectives?|goals?)\s+(?:of\s+|is\s+|are\s+|=\s*)?(?:[<>≤≥~]=?\s*)?\d",
    )
});

/// The word right after or before a figure calls it the target: "500 ns target", "the 1000 req/s
/// SLO", "SLO 99.5%", "target of 200 ms".
static TARGET_AFTER: LazyLock<Regex> = LazyLock::new(|| re(r"^\s*(?:targets?|slos?|objectives?)\b"));
static TARGET_BEFORE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?:targets?|slos?|objectives?)(?:\s+(?:of|is))?\s*[:=]?\s*(?:[<>≤≥]=?\s*)?$"));

pub fn called_target(text: &str, f: &Figure) -> bool {
    let before = &text[..f.start];
    let mut from = before.len().saturating_sub(24);
    while !before.is_char_boundary(from) {
        from += 1;
    }
    TARGET_AFTER.is_match(&text[f.end..]) || TARGET_BEFORE.is_match(&before[from..])
}

/// Words of a result: a sentence with them reports, even when it names the target.
static RESULT_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:results?|pass(?:es|ed)?|fail(?:s|ed)?|miss(?:es|ed)?|actual|measured|achieved|observed|vs\.?|versus)\b|[✅❌✓✗✔✘]",
    )
});

/// "TBD": a target still to be decided.
static TBD: LazyLock<Regex> = LazyLock::new(|| re(r"\b(?:tbd|tba|to\s+be\s+(?:decided|defined|determined|agreed))\b"));

/// Words that make a range a target ("between 2 and 3 s is acceptable"): which bound is then
/// the one that holds is clear from the kind.
static RANGE_OK: LazyLock<Regex> = LazyLock::new(|| re(r"\b(?:acceptable|tolerable|allowed|must|shall|required)\b"));

/// Words that state a figure as a fact rather than a target.
static STATED: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\s=\s|\bwould\s+(?:be|lose|take|need)\b|\bdepends?\s+on\b|\b(?:takes?|took|lasts?|lasted)\b|\b(?:could|might)\b|\btypically\b|\busually\b|\bapproximately\b|\b(?:around|about|roughly)\s+\d|~\s*\d|≈|\bachiev(?:e|es|ing)\b|\breach(?:es|ing)?\b|\bto\s+reach\b",
    )
});

/// Words that make a figure a commitment: a promise, or naming it a target.
static COMMITTED: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:shall|must|should|will|needs?\s+to|has\s+to|have\s+to|required?|requires|guarantees?|commit(?:s|ted|ment)?|targets?|objectives?|slos?|slas?|goals?|aims?\s+(?:at|to|for)|thresholds?|criteria|criterion|acceptance|budgeted|acceptable|tolerable|allowed|handles?|serves?|supports?|sustains?|withstands?|processes|accepts?|delivers?|expected\s+to)\b",
    )
});

/// A requirement read from a sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Read {
    pub kind: Kind,
    pub op: Op,
    pub value: f64,
    /// Where its figure starts.
    pub at: usize,
    /// What it applies to, when the sentence says so right after it ("< 1 s for reads, < 3 s
    /// for writes").
    pub scope: Option<String>,
}

/// A figure that is not read as a requirement, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Unread {
    pub at: usize,
    pub figure: String,
    pub why: String,
}

/// A figure flow is not sure how to read: the readings a person may choose from.
#[derive(Debug, Clone, PartialEq)]
pub struct Ask {
    pub at: usize,
    pub figure: String,
    pub why: String,
    pub readings: Vec<Read>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    pub found: Vec<Read>,
    pub unread: Vec<Unread>,
    /// Figures to ask a person about rather than guess.
    pub asks: Vec<Ask>,
    /// Figures that cannot be targets: where, and why.
    pub impossible: Vec<(usize, String)>,
    /// What a person should know about a figure kept as `other` (a missing statistic, a mean
    /// time to recover).
    pub notes: Vec<String>,
}

/// Which way is better for a kind.
#[derive(Clone, Copy, PartialEq)]
enum Dir {
    Up,
    Down,
}

fn dir(label: &Label) -> Dir {
    match label {
        Label::Throughput | Label::Success | Label::Availability => Dir::Up,
        _ => Dir::Down,
    }
}

/// The tokens of a sentence with running sums, so that the distance between two places and
/// whether a clause breaks between them cost a binary search, not a walk: reading stays linear
/// in the sentence's length.
pub(crate) struct Words {
    pub toks: Vec<Token>,
    /// `weight[i]`: the distance weight of `toks[..i]`.
    weight: Vec<usize>,
    /// `breaks[i]`: how many clause breaks are in `toks[..i]`.
    breaks: Vec<usize>,
}

impl Words {
    pub(crate) fn new(text: &str) -> Words {
        let toks = quantity::tokens(text);
        let mut weight = Vec::with_capacity(toks.len() + 1);
        let mut breaks = Vec::with_capacity(toks.len() + 1);
        let (mut w, mut b) = (0, 0);
        weight.push(0);
        breaks.push(0);
        for t in &toks {
            w += match t.text.as_str() {
                "," | "—" | "–" => 2,
                ";" => 4,
                ":" | "(" | ")" => 0,
                _ => 1,
            };
            b += usize::from(clause_break(&t.text));
            weight.push(w);
            breaks.push(b);
        }
        Words { toks, weight, breaks }
    }

    fn at(&self, pos: usize) -> usize {
        quantity::token_at(&self.toks, pos)
    }

    /// Words between two byte offsets, with clause punctuation weighing more.
    fn distance(&self, from: usize, to: usize) -> usize {
        let (a, b) = (self.at(from), self.at(to));
        self.weight[b.max(a)] - self.weight[a]
    }

    /// Does a clause break stand between two byte offsets?
    fn broken(&self, from: usize, to: usize) -> bool {
        let (a, b) = (self.at(from), self.at(to));
        self.breaks[b.max(a)] > self.breaks[a]
    }

    /// Labels within `max` of the figure at `start..end`: (index, distance, after the figure).
    /// `spans` is sorted by start; distance only grows away from the figure, so the walk stops
    /// at the first one too far.
    fn near(&self, spans: &[Span], start: usize, end: usize, max: usize) -> Vec<(usize, usize, bool)> {
        let mut out = Vec::new();
        let k = spans.partition_point(|s| s.start < end);
        for (j, s) in spans.iter().enumerate().skip(k) {
            let d = self.distance(end, s.start);
            if d > max {
                break;
            }
            out.push((j, d, true));
        }
        for j in (0..k).rev() {
            let s = &spans[j];
            if s.end > start {
                out.push((j, 0, false));
                continue;
            }
            let d = self.distance(s.end, start);
            if d <= max {
                out.push((j, d, false));
            } else if self.distance(s.start, start) > max + 20 {
                break;
            }
        }
        out
    }
}

const MAX_DISTANCE: usize = 10;

/// Why a figure with no label near it is not read.
pub const NO_LABEL: &str = "no label says what it measures";

const CURRENT_WHY: &str = "describes what is measured today, not a target";

fn clause_break(t: &str) -> bool {
    matches!(t, "," | ";" | "—" | "–" | "but" | "whereas" | "however" | "after")
}

/// Where the words that make a figure today's stand (outside labels): their ends, in order.
fn current_words(text: &str, labels: &[Span]) -> Vec<usize> {
    CURRENT
        .find_iter(text)
        .filter(|m| {
            let k = labels.partition_point(|l| l.end <= m.start());
            !labels[k..].iter().take_while(|l| l.start < m.end()).any(|l| m.start() < l.end)
        })
        .map(|m| m.end())
        .collect()
}

/// Is the figure at `start`..`end` described as today's, not a target? Either a word before it
/// in its clause ("the current p99 is 850 ms") or one right after it ("850 ms today").
fn is_current(w: &Words, current: &[usize], start: usize, end: usize) -> bool {
    let after = w.at(end);
    let trailing = w.toks[after.min(w.toks.len())..]
        .iter()
        .take_while(|t| !clause_break(&t.text) && t.text != ".")
        .take(3)
        .any(|t| CURRENT_AFTER.is_match(&t.text));
    // The nearest such word before the figure is the only one that can share its clause.
    let k = current.partition_point(|&e| e <= start);
    trailing || k.checked_sub(1).is_some_and(|k| !w.broken(current[k], start))
}

fn what(label: &Label) -> &'static str {
    match label {
        Label::Stat(_) | Label::Latency => "latency",
        Label::Throughput => "throughput",
        Label::Success => "success rate",
        Label::Error => "error rate",
        Label::Availability => "availability",
        Label::Downtime => "downtime",
        Label::Rto => "RTO",
        Label::Rpo => "RPO",
        Label::Ignore(..) => "figure",
    }
}

fn op_words(op: Op) -> &'static str {
    match op {
        Op::Lt => "below",
        Op::Le => "at most",
        Op::Gt => "above",
        Op::Ge => "at least",
        Op::Eq => "equal to",
    }
}

/// What a whole sentence says, found once: its commitment, a wish, a fact-stating verb.
struct Tone {
    committed: bool,
    /// "RTO", "recovery point objective": an objective by name.
    objective: bool,
    unsure: Option<String>,
    stated: Option<String>,
}

impl Tone {
    fn of(text: &str) -> Tone {
        Tone {
            committed: COMMITTED.is_match(text),
            objective: OBJECTIVE.is_match(text),
            unsure: UNSURE.find(text).map(|m| m.as_str().to_string()),
            stated: STATED.find(text).map(|m| m.as_str().trim().to_string()),
        }
    }
}

/// Read one sentence (normalized text).
pub fn read(text: &str, hints: &Hints) -> Reading {
    // "P95_Latency": an underscore joins words (same length, so offsets hold).
    let spaced;
    let text = if text.contains('_') {
        spaced = text.replace('_', " ");
        spaced.as_str()
    } else {
        text
    };
    let w = Words::new(text);
    let spans = labels(text);
    let load = spans.iter().any(|s| s.label == Label::Throughput);
    let mut figs: Vec<Figure> = quantity::figures(text, load);
    if let Some((class, factor)) = hints.bare_unit {
        for f in figs.iter_mut().filter(|f| f.class == Class::Bare) {
            f.class = class;
            f.value *= factor;
        }
    }
    // "| RPO | 0 (synchronous replication) |": zero needs no unit.
    if hints.labels.first().is_some_and(|l| l.takes(Class::Time)) {
        for f in figs.iter_mut().filter(|f| f.class == Class::Bare && f.value == 0.0 && f.start == 0) {
            f.class = Class::Time;
        }
    }
    // "RPO: 0", "an RPO of 0 (synchronous replication)": right after the point or time it
    // bounds, zero needs no unit either.
    for f in figs.iter_mut().filter(|f| f.class == Class::Bare && f.value == 0.0) {
        let named = spans.iter().any(|s| {
            matches!(s.label, Label::Rpo | Label::Rto | Label::Downtime)
                && s.end <= f.start
                && matches!(
                    text[s.end..f.start].trim().to_lowercase().as_str(),
                    "" | ":" | "=" | "-" | "–" | "of" | "is" | "target:" | "target of"
                )
        });
        if named {
            f.class = Class::Time;
        }
    }
    // "a success ratio of at least 0.999": a ratio is a percentage.
    for f in figs.iter_mut().filter(|f| f.class == Class::Bare && f.value > 0.0 && f.value <= 1.0) {
        let written = &text[f.start..f.end];
        let ratio = written.contains('.')
            && w.near(&spans, f.start, f.end, 8).iter().any(|&(j, _, after)| {
                let s = &spans[j];
                let named = text[s.start..s.end].to_ascii_lowercase();
                !after
                    && s.end <= f.start
                    && matches!(s.label, Label::Success | Label::Error | Label::Availability)
                    && (named.contains("ratio") || named.contains("rate") || named.contains("availab"))
            });
        if ratio {
            f.class = Class::Percent;
            f.value = (f.value * 100.0 * 1e9).round() / 1e9;
        }
    }
    // "500 m": minutes, metres or millicores; flow does not guess which.
    let lone_m: Vec<Unread> = figs
        .iter()
        .filter(|f| f.class == Class::Bare)
        .filter(|f| {
            let after = text[f.end..].trim_start();
            after.starts_with('m') && !after[1..].starts_with(|c: char| c.is_alphanumeric())
        })
        .map(|f| Unread {
            at: f.start,
            figure: format!("{} m", &text[f.start..f.end]),
            why: "\"m\" may be minutes, metres or millicores: write \"min\" for minutes".into(),
        })
        .collect();
    figs.retain(|f| f.class != Class::Bare);

    let mut out = Reading { unread: lone_m, ..Reading::default() };
    // Under a heading, parent item or table that says its figures are not targets (results,
    // alerts, examples ...): none is read, each is listed with why.
    let names_target = NAMES_TARGET.is_match(text) && !RESULT_WORDS.is_match(text);
    if let Some(why) = hints.not_targets.as_ref().filter(|_| !names_target) {
        // "p99: PASSES (213 ns vs 500 ns target)": the figure the sentence calls the target is
        // one; the others are what was measured.
        let (named, rest): (Vec<Figure>, Vec<Figure>) = figs.into_iter().partition(|f| called_target(text, f));
        for f in &rest {
            out.unread.push(Unread { at: f.start, figure: f.text(text).to_string(), why: why.clone() });
        }
        if named.is_empty() {
            return out;
        }
        figs = named;
    }
    let mut spans = spans;
    // "95 % of requests ... within 300 ms": the share is the percentile, not a figure.
    let mut shares = Vec::new();
    for (i, f) in figs.iter().enumerate() {
        let Some(share_end) = f.share_end else { continue };
        // "within 500 ms for 95 % of requests": the share after its latency.
        let before = i.checked_sub(1).map(|k| &figs[k]).filter(|g| g.class == Class::Time);
        if let Some(t) = before.filter(|t| matches!(text[t.end..f.start].trim(), "for" | "of" | "in" | "at")) {
            let _ = t;
            shares.push(i);
            spans.push(Span { start: f.start, end: share_end, label: Label::Stat(fmt_num(f.value)) });
            continue;
        }
        let Some(t) = figs.get(i + 1).filter(|g| g.class == Class::Time) else { continue };
        if w.distance(share_end, t.start) > 2 * MAX_DISTANCE {
            continue;
        }
        let k = spans.partition_point(|s| s.start < share_end);
        let between_success = spans[k..]
            .iter()
            .take_while(|s| s.start < t.start)
            .any(|s| s.end <= t.start && matches!(s.label, Label::Success | Label::Error));
        if !between_success {
            shares.push(i);
            spans.push(Span { start: f.start, end: share_end, label: Label::Stat(fmt_num(f.value)) });
        }
    }
    if !shares.is_empty() {
        let mut keep = vec![true; figs.len()];
        for i in shares {
            keep[i] = false;
        }
        let mut k = keep.into_iter();
        figs.retain(|_| k.next().unwrap_or(true));
    }
    spans.sort_by_key(|s| s.start);

    // Today's figures are not targets; their labels still count ("the current p99 is 850 ms;
    // it must come down to 400 ms": the 400 ms is the p99 too).
    let today = current_words(text, &spans);
    let current: Vec<bool> = figs.iter().map(|f| is_current(&w, &today, f.start, f.end)).collect();

    // The condition of an EARS sentence: a load figure in it is a throughput requirement;
    // anything else there is a trigger, not a target.
    if hints.condition {
        for (i, f) in figs.iter().enumerate() {
            if current[i] {
                out.unread.push(Unread { at: f.start, figure: f.text(text).to_string(), why: CURRENT_WHY.into() });
            } else if f.class == Class::Rate {
                push_rate(text, &w, &spans, f, &mut out);
            } else {
                out.unread.push(Unread {
                    at: f.start,
                    figure: f.text(text).to_string(),
                    why: "in the condition (WHEN/IF/WHILE ...), not a target".into(),
                });
            }
        }
        return out;
    }

    let mut bound: Vec<Option<usize>> = vec![None; figs.len()];
    let mut taken = vec![false; spans.len()];
    // "99.7 % (2.5 nines)": the nines restate the figure before them.
    let restated: Vec<bool> = (0..figs.len())
        .map(|i| {
            figs[i].nines
                && i > 0
                && figs[i - 1].class == Class::Percent
                && text[figs[i - 1].end..figs[i].start].trim() == "("
        })
        .collect();
    // Figures that explain themselves: request rates, bandwidth, nines.
    for (i, f) in figs.iter().enumerate() {
        match f.class {
            Class::Rate | Class::Bandwidth => bound[i] = Some(usize::MAX),
            Class::Percent if f.nines => bound[i] = Some(usize::MAX),
            _ => {}
        }
    }
    // "The RTO and RPO are 1 hour and 5 minutes respectively": in order.
    if text.to_ascii_lowercase().contains("respectively") {
        let ls: Vec<usize> = (0..spans.len()).filter(|&j| !spans[j].label.sink()).collect();
        let fs: Vec<usize> = (0..figs.len()).filter(|&i| bound[i].is_none()).collect();
        if ls.len() == fs.len()
            && fs.len() > 1
            && ls.iter().zip(&fs).all(|(&j, &i)| spans[j].label.takes(figs[i].class))
        {
            for (&j, &i) in ls.iter().zip(&fs) {
                bound[i] = Some(j);
                taken[j] = true;
            }
        }
    }
    // "the relevant budget (1% for availability, 5% for latency)": a look-alike's parentheses
    // hold its own figures.
    for (j, sp) in spans.iter().enumerate().filter(|(_, sp)| sp.label.sink()) {
        let rest = &text[sp.end..];
        let Some(open) =
            rest.strip_prefix(' ').unwrap_or(rest).strip_prefix('(').map(|_| sp.end + rest.find('(').unwrap_or(0))
        else {
            continue;
        };
        let reach = &text[open..text.len().min(open + 200)];
        let reach = &text[open..open + reach.char_indices().last().map_or(0, |(i, c)| i + c.len_utf8())];
        let close = reach.find(')').map_or(open + reach.len(), |c| open + c);
        let k = figs.partition_point(|f| f.start <= open);
        for (i, f) in figs.iter().enumerate().skip(k).take_while(|(_, f)| f.start < close) {
            if bound[i].is_none() && f.end <= close && sp.label.takes(f.class) {
                bound[i] = Some(j);
            }
        }
    }
    // The rest: nearest compatible label first, one figure per label (look-alikes take any).
    let mut pairs: Vec<(usize, bool, usize, usize)> = Vec::new();
    for (i, f) in figs.iter().enumerate() {
        if bound[i].is_some() {
            continue;
        }
        for (j, d, after) in w.near(&spans, f.start, f.end, MAX_DISTANCE) {
            if spans[j].label.takes(f.class) {
                pairs.push((d, after, j, i));
            }
        }
    }
    pairs.sort();
    for (_, _, j, i) in pairs {
        if bound[i].is_some() || (taken[j] && !spans[j].label.sink()) {
            continue;
        }
        bound[i] = Some(j);
        taken[j] = true;
    }

    for i in 0..figs.len() {
        if bound[i].is_none() {
            // A label of today's figure of the same class, earlier in the sentence.
            let earlier = (0..i).rev().find(|&k| current[k] && figs[k].class == figs[i].class && bound[k].is_some());
            bound[i] = earlier.and_then(|k| bound[k]);
        }
        // "p99 < 1 s for reads, < 3 s for writes": the next figure of a list shares the label
        // when both say what they apply to.
        if bound[i].is_none() && i > 0 && bound[i - 1].is_some_and(|j| j != usize::MAX) {
            let k = i - 1;
            let near = figs[k].class == figs[i].class && w.distance(figs[k].end, figs[i].start) <= 6;
            let scoped = scope_after(text, &figs[k]).is_some() && scope_after(text, &figs[i]).is_some();
            // "<= 300 ms (P95); <= 500 ms at 2x peak": a second compared figure, right after.
            let compared = |g: &Figure| g.suffix.is_some() || quantity::cmp_before(&w.toks, w.at(g.start)).is_some();
            let stat = matches!(bound[k].map(|j| &spans[j].label), Some(Label::Stat(_)));
            if near && (scoped || (stat && compared(&figs[k]) && compared(&figs[i]))) {
                bound[i] = bound[k];
            }
        }
    }

    let tone = Tone::of(text);
    for (i, f) in figs.iter().enumerate() {
        let figure = f.text(text).to_string();
        if current[i] {
            out.unread.push(Unread { at: f.start, figure, why: CURRENT_WHY.into() });
            continue;
        }
        if restated[i] {
            let why = format!("restates {} before it", figs[i - 1].text(text));
            out.unread.push(Unread { at: f.start, figure, why });
            continue;
        }
        let label = match bound[i] {
            Some(usize::MAX) => {
                let as_label = match f.class {
                    Class::Rate | Class::Bandwidth => Label::Throughput,
                    _ => Label::Availability,
                };
                if let Some(why) = not_a_target(text, &w, f, &as_label, hints.column) {
                    out.unread.push(Unread { at: f.start, figure, why: why.into() });
                    continue;
                }
                let before = out.found.len();
                match f.class {
                    Class::Rate => push_rate(text, &w, &spans, f, &mut out),
                    Class::Bandwidth => out.unread.push(Unread {
                        at: f.start,
                        figure,
                        why: "a bandwidth (bytes or bits per second), not a request rate".into(),
                    }),
                    _ => push(text, &w.toks, f, &Label::Availability, hints, &mut out),
                }
                settle(text, &w, &tone, f, &as_label, hints, before, &mut out);
                continue;
            }
            Some(j) => spans[j].label.clone(),
            None => match hints.labels.iter().find(|l| l.takes(f.class)) {
                Some(l) => l.clone(),
                None => {
                    out.unread.push(Unread { at: f.start, figure, why: NO_LABEL.into() });
                    continue;
                }
            },
        };
        // "responses within 200 ms on average": a free statistic nearby says which latency.
        let label = match label {
            Label::Latency => w
                .near(&spans, f.start, f.end, MAX_DISTANCE)
                .into_iter()
                .filter(|&(j, _, _)| !taken[j] && matches!(spans[j].label, Label::Stat(_)))
                .min_by_key(|&(j, d, _)| (d, j))
                .map(|(j, _, _)| spans[j].label.clone())
                .or_else(|| hints.labels.iter().find(|l| matches!(l, Label::Stat(_))).cloned())
                .unwrap_or(Label::Latency),
            l => l,
        };
        if !label.sink() {
            if let Some(why) = not_a_target(text, &w, f, &label, hints.column) {
                // "Availability: TBD (e.g., 99.9 % monthly)": the example is a reading to offer.
                let before = out.found.len();
                if why.starts_with("an example") && TBD.is_match(text) {
                    push(text, &w.toks, f, &label, hints, &mut out);
                }
                if out.found.len() > before {
                    let readings = out.found.split_off(before);
                    let why = format!(
                        "the target is still to be decided (TBD); `{figure}` is its example: is it the target?"
                    );
                    out.asks.push(Ask { at: f.start, figure, why, readings });
                } else {
                    out.unread.push(Unread { at: f.start, figure, why: why.into() });
                }
                continue;
            }
        }
        // "99.9 % of requests succeed over a rolling 28-day window": a share of requests over
        // weeks is an availability objective; a load test of minutes is no evidence for it.
        let label = match label {
            Label::Success | Label::Error if hints.long_window || LONG_WINDOW.is_match(text) => Label::Availability,
            l => l,
        };
        let before = out.found.len();
        push(text, &w.toks, f, &label, hints, &mut out);
        settle(text, &w, &tone, f, &label, hints, before, &mut out);
    }
    // Two targets of one kind in a sentence, each saying what it applies to: scoped.
    let mut per_kind: std::collections::HashMap<Kind, usize> = std::collections::HashMap::new();
    for r in &out.found {
        *per_kind.entry(r.kind.clone()).or_default() += 1;
    }
    for r in out.found.iter_mut() {
        if per_kind.get(&r.kind).is_some_and(|&n| n > 1) {
            let k = figs.partition_point(|f| f.start < r.at);
            if let Some(f) = figs.get(k).filter(|f| f.start == r.at) {
                r.scope = scope_after(text, f);
            }
        }
    }
    out
}

/// "< 1 s for reads", "< 3s для write": what the words right after a figure apply it to.
fn scope_after(text: &str, f: &Figure) -> Option<String> {
    static FOR: LazyLock<Regex> = LazyLock::new(|| {
        re(
            r"^[^,;.()\d]{0,30}?(?:\(\s*)?\b(?:for|для|on|in|at)\s+(?:the\s+)?(?P<s>[\w-]+(?:\s+(?:users?|customers?|tiers?|plans?|requests?|calls?|operations?|endpoints?|paths?|queries|api|peak|load|traffic))?)",
        )
    });
    let c = FOR.captures(&text[f.end..])?;
    let s = c["s"].to_lowercase();
    (!matches!(s.as_str(), "a" | "an" | "at" | "each" | "every" | "all" | "any" | "least" | "most" | "under" | "or"))
        .then_some(s)
}

/// A figure just read (`out.found` grew past `before`) that its sentence does not make a
/// target is turned into a question: a wish ("stretch target"), an estimate ("± 10 min"), or a
/// figure stated with no comparison and no commitment outside a section of targets.
#[allow(clippy::too_many_arguments)]
fn settle(
    text: &str,
    w: &Words,
    tone: &Tone,
    f: &Figure,
    label: &Label,
    hints: &Hints,
    before: usize,
    out: &mut Reading,
) {
    if out.found.len() <= before {
        return;
    }
    let figure = f.text(text).to_string();
    let compared = f.suffix.is_some() || hints.op.is_some() || quantity::cmp_before(&w.toks, w.at(f.start)).is_some();
    let committed = hints.targets || tone.committed || named_at(text, f);
    // A label and its figure ("Peak: 3,000 req/s") is how specs are written; a figure that a
    // sentence states as a fact ("= 20,000 writes/s", "depends on", "would be"), a heading
    // or a range stated with no commitment is asked about.
    let named_objective = tone.objective && matches!(label, Label::Rto | Label::Rpo);
    let uncommitted = !(committed || compared || named_objective);
    let why = if let Some(m) = &tone.unsure {
        format!("`{figure}` is called \"{m}\": is it a target?")
    } else if text[..f.start].trim_end().ends_with('±') {
        format!("`±{figure}` is an estimate: is `{figure}` a target?")
    } else if let (true, Some(verb)) = (uncommitted, &tone.stated) {
        format!("`{figure}` is stated as a fact (\"{verb}\"), with no comparison and no commitment (must, target, SLO ...): is it a target?")
    } else if uncommitted && hints.heading {
        format!(
            "`{figure}` is in a heading, with no comparison and no commitment (must, target, SLO ...): is it a target?"
        )
    } else if f.range.is_some() && !(compared || RANGE_OK.is_match(text)) {
        format!("`{figure}` is a range with no comparison and no commitment: is it a target, and which bound?")
    } else {
        return;
    };
    let readings = out.found.split_off(before);
    out.asks.push(Ask { at: f.start, figure, why, readings });
}

/// A request rate, unless a rate limit explains it.
fn push_rate(text: &str, w: &Words, spans: &[Span], f: &Figure, out: &mut Reading) {
    let limit = w.near(spans, f.start, f.end, 4).into_iter().find(|&(j, _, _)| {
        let s = &spans[j];
        s.label.sink() && s.label.takes(Class::Rate)
    });
    if let Some(Span { label: Label::Ignore(why, _), .. }) = limit.map(|(j, _, _)| &spans[j]) {
        out.unread.push(Unread { at: f.start, figure: f.text(text).to_string(), why: (*why).into() });
        return;
    }
    push(text, &w.toks, f, &Label::Throughput, &Hints::default(), out);
}

/// A figure with its label: a requirement, or why not.
fn push(text: &str, toks: &[Token], f: &Figure, label: &Label, hints: &Hints, out: &mut Reading) {
    let figure = f.text(text).to_string();
    let at = f.start;
    let kind = match label {
        Label::Ignore(why, _) => {
            out.unread.push(Unread { at, figure, why: (*why).into() });
            if why.starts_with("a mean time") {
                out.notes.push((*why).into());
            }
            return;
        }
        Label::Latency => Kind::Other,
        Label::Stat(p) if p == "avg" => Kind::LatencyAvg,
        Label::Stat(p) => Kind::LatencyP(p.clone()),
        Label::Throughput => Kind::Throughput,
        Label::Success | Label::Error => Kind::SuccessRate,
        Label::Availability => Kind::Availability,
        Label::Downtime => Kind::FailoverDowntime,
        Label::Rto => Kind::Rto,
        Label::Rpo => Kind::Rpo,
    };
    let d = dir(label);
    let written = f.suffix.or_else(|| quantity::cmp_before(toks, quantity::token_at(toks, f.start)));
    let default = if d == Dir::Up { Op::Ge } else { Op::Le };
    let (op, value) = match f.range {
        Some((lo, hi)) => (default, if d == Dir::Up { lo } else { hi }),
        None => {
            let op = match written.or(hints.op.map(Cmp::Op)) {
                None | Some(Cmp::UpTo) | Some(Cmp::Op(Op::Eq)) => default,
                Some(Cmp::Op(op)) => op,
            };
            let consistent = match d {
                Dir::Up => matches!(op, Op::Ge | Op::Gt),
                Dir::Down => matches!(op, Op::Le | Op::Lt),
            };
            if !consistent {
                out.unread.push(Unread {
                    at,
                    figure,
                    why: format!(
                        "\"{} {}\" would be a {} for a {}, whose target is {}: not read",
                        op_words(op),
                        f.text(text),
                        if d == Dir::Up { "ceiling" } else { "floor" },
                        what(label),
                        if d == Dir::Up { "a floor" } else { "a ceiling" }
                    ),
                });
                return;
            }
            (op, f.value)
        }
    };
    // Impossible figures.
    let bad = match &kind {
        Kind::LatencyP(p) if !p.parse::<f64>().is_ok_and(|p| p > 0.0 && p < 100.0) => {
            Some(format!("percentile p{p} does not exist"))
        }
        Kind::LatencyAvg | Kind::LatencyP(_) | Kind::Other if value < 0.0 => {
            Some(format!("a latency of {} ms is impossible", fmt_num(value * 1000.0)))
        }
        Kind::SuccessRate | Kind::Availability if !(0.0..=100.0).contains(&value) => {
            Some(format!("a {} of {} % is impossible", what(label), fmt_num(value)))
        }
        Kind::Throughput if value <= 0.0 => Some(format!("a throughput of {} req/s is not a target", fmt_num(value))),
        Kind::FailoverDowntime | Kind::Rto | Kind::Rpo if value < 0.0 => {
            Some(format!("a {kind} of {} s is impossible", fmt_num(value)))
        }
        _ => None,
    };
    if let Some(why) = bad {
        out.impossible.push((at, why));
        return;
    }
    if *label == Label::Latency {
        // No statistic: flow does not guess one; a person says which (or none).
        let ms = (value * 1000.0 * 1e6).round() / 1e6;
        out.asks.push(Ask {
            at,
            figure: figure.clone(),
            why: format!("`{figure}` is a latency with no statistic: the average, the p95 or the p99?"),
            readings: [Kind::LatencyAvg, Kind::LatencyP("95".into()), Kind::LatencyP("99".into())]
                .into_iter()
                .map(|kind| Read { kind, op, value: ms, at, scope: None })
                .collect(),
        });
        return;
    }
    let (op, value) = match (label, &kind) {
        // error <= x  <=>  success >= 100 - x
        (Label::Error, _) => (if op == Op::Lt { Op::Gt } else { Op::Ge }, ((100.0 - value) * 1e9).round() / 1e9),
        (_, Kind::LatencyAvg | Kind::LatencyP(_)) => (op, (value * 1000.0 * 1e6).round() / 1e6),
        _ => (op, (value * 1e9).round() / 1e9),
    };
    out.found.push(Read { kind, op, value, at, scope: None });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Read as in a section of targets.
    fn got(text: &str) -> Vec<(String, Op, f64)> {
        let r = read(&quantity::normalize(text), &Hints { targets: true, ..Hints::default() });
        r.found.iter().map(|f| (f.kind.to_string(), f.op, f.value)).collect()
    }

    fn one(text: &str) -> (String, Op, f64) {
        let g = got(text);
        assert_eq!(g.len(), 1, "{text}: {g:?}");
        g[0].clone()
    }

    #[test]
    fn figures_in_prose() {
        use Op::*;
        let table: &[(&str, &str, Op, f64)] = &[
            ("handle 2,500 connections per second", "throughput", Ge, 2500.0),
            ("serve 2500 requests/s", "throughput", Ge, 2500.0),
            ("2.5k requests per second", "throughput", Ge, 2500.0),
            ("peak load of 150,000 per minute", "throughput", Ge, 2500.0),
            ("handle up to 2,500 rps", "throughput", Ge, 2500.0),
            ("the average response time is under 250 ms", "latency_avg", Lt, 250.0),
            ("mean latency at most 0.25 seconds", "latency_avg", Le, 250.0),
            ("responses within 200 milliseconds on average", "latency_avg", Le, 200.0),
            ("p99 latency below 800 ms", "latency_p99", Lt, 800.0),
            ("the 95th percentile response time within 1 second", "latency_p95", Le, 1000.0),
            ("median response time under 80 ms", "latency_p50", Lt, 80.0),
            ("95 % of requests complete within 300 ms", "latency_p95", Le, 300.0),
            ("for 99 % of calls the API responds in under 1 second", "latency_p99", Lt, 1000.0),
            ("at least 99.5 % of requests are successful", "success_rate", Ge, 99.5),
            ("success rate of at least 99.9%", "success_rate", Ge, 99.9),
            ("error rate at most 0.1 %", "success_rate", Ge, 99.9),
            ("error rate below 1%", "success_rate", Gt, 99.0),
            ("at most 0.1 % of requests may fail", "success_rate", Ge, 99.9),
            ("availability of 99.95 %", "availability", Ge, 99.95),
            ("four nines of uptime", "availability", Ge, 99.99),
            ("with at most 1 minute of downtime", "failover_downtime", Le, 60.0),
            ("failover downtime under 45 s", "failover_downtime", Lt, 45.0),
            ("RTO 2h", "rto", Le, 7200.0),
            ("recovery time objective of 2 hours 30 minutes", "rto", Le, 9000.0),
            ("RPO: 10 minutes", "rpo", Le, 600.0),
            ("lose at most 5 min of data", "rpo", Le, 300.0),
            ("may not be higher than 120 ms on average", "latency_avg", Le, 120.0),
        ];
        for (text, kind, op, value) in table {
            let (k, o, v) = one(text);
            assert_eq!((k.as_str(), o, v), (*kind, *op, *value), "{text}");
        }
    }

    #[test]
    fn figures_bind_to_their_own_labels() {
        assert_eq!(got("RTO 2 h and RPO 10 min"), [("rto".into(), Op::Le, 7200.0), ("rpo".into(), Op::Le, 600.0)]);
        assert_eq!(
            got("an RPO of 15 minutes and an RTO of 4 hours"),
            [("rpo".into(), Op::Le, 900.0), ("rto".into(), Op::Le, 14_400.0)]
        );
        assert_eq!(
            got("4 hours RTO, 15 minutes RPO"),
            [("rto".into(), Op::Le, 14_400.0), ("rpo".into(), Op::Le, 900.0)]
        );
        assert_eq!(
            got("The RTO and RPO are 1 hour and 5 minutes respectively"),
            [("rto".into(), Op::Le, 3600.0), ("rpo".into(), Op::Le, 300.0)]
        );
        assert_eq!(
            got("p99 latency under 300 ms and average under 100 ms"),
            [("latency_p99".into(), Op::Lt, 300.0), ("latency_avg".into(), Op::Lt, 100.0)]
        );
    }

    #[test]
    fn look_alikes_are_not_targets() {
        for text in [
            "Mean time to recover (MTTR) shall be under 30 minutes",
            "Support tickets get a first response within 4 hours",
            "The cache hit rate stays above 90 %",
            "Storage throughput of 250 MB/s",
            "CPU utilisation below 70 %",
            "Error budget: 0.1 %",
            "Backups every 5 minutes, kept for 35 days",
            "Client timeout: 30 s",
            "The current p99 is 850 ms",
            "The p95 response time is 40 ms today",
            "a rate limit of 100 requests per second",
        ] {
            let r = read(&quantity::normalize(text), &Hints::default());
            assert!(r.found.is_empty(), "{text}: {:?}", r.found);
            assert!(!r.unread.is_empty(), "{text}: its figure is reported unread");
        }
        let r = read("Response time should be under 500 ms", &Hints::default());
        assert!(r.found.is_empty() && r.asks[0].why.contains("no statistic"), "{r:?}");
    }

    #[test]
    fn wrong_way_comparisons_are_not_read() {
        let r = read("p99 latency above 200 ms", &Hints::default());
        assert!(r.found.is_empty());
        assert!(r.unread[0].why.contains("floor"), "{r:?}");
        let r = read("availability less than 99.9 %", &Hints::default());
        assert!(r.found.is_empty());
    }

    #[test]
    fn impossible_figures() {
        let r = read("average response under -5 ms", &Hints::default());
        assert!(r.impossible[0].1.contains("-5 ms"), "{r:?}");
        let r = read("at least 150 % of requests successful", &Hints::default());
        assert!(r.impossible[0].1.contains("150 %"), "{r:?}");
        assert!(!read("error rate at most 120%", &Hints::default()).impossible.is_empty());
    }

    #[test]
    fn hints_from_context() {
        let h = Hints { labels: vec![Label::Stat("99".into())], targets: true, ..Hints::default() };
        assert_eq!(read("checkout: 300 ms", &h).found[0].kind, Kind::LatencyP("99".into()));
        let h = Hints { not_targets: Some("under \"Results\"".into()), ..h };
        let r = read("checkout p99 must be under 300 ms", &h);
        assert!(r.found.is_empty() && r.unread[0].why.contains("Results"), "{r:?}");
        let h = Hints {
            bare_unit: Some((Class::Time, 0.001)),
            op: Some(Op::Le),
            labels: vec![Label::Stat("95".into())],
            ..Hints::default()
        };
        let r = read("200", &h);
        assert_eq!((r.found[0].op, r.found[0].value), (Op::Le, 200.0));
        let h = Hints { condition: true, ..Hints::default() };
        let r = read("WHEN traffic reaches 5,000 requests per second and p99 exceeds 2 s THE system SHALL", &h);
        assert_eq!(r.found.len(), 1);
        assert_eq!(r.unread[0].why, "in the condition (WHEN/IF/WHILE ...), not a target");
    }

    fn asked(text: &str) -> Vec<String> {
        read(&quantity::normalize(text), &Hints::default()).asks.into_iter().map(|a| a.why).collect()
    }

    fn unread(text: &str) -> Vec<String> {
        let r = read(&quantity::normalize(text), &Hints::default());
        assert!(r.found.is_empty(), "{text}: {:?}", r.found);
        r.unread.into_iter().map(|u| u.why).collect()
    }

    #[test]
    fn a_figure_is_a_target_only_when_the_text_commits_to_it() {
        // A comparison, a promise, a target named at the figure, or an objective by name.
        for text in [
            "p99 latency under 300 ms",
            "The API must serve 2,500 requests per second",
            "a 1000 req/s SLO",
            "RTO: 4 hours",
        ] {
            let r = read(&quantity::normalize(text), &Hints::default());
            assert_eq!(r.found.len(), 1, "{text}: {r:?}");
        }
        // A figure stated as a fact, a wish or an estimate is asked about, with its reading.
        for (text, why) in [
            ("Peak throughput = 20,000 writes/sec", "no comparison and no commitment"),
            ("Stretch target: p99 of 1 s", "Stretch target"),
            ("p99 latency should be ±10 ms", "estimate"),
        ] {
            let r = read(&quantity::normalize(text), &Hints::default());
            assert!(r.found.is_empty(), "{text}: {r:?}");
            assert!(r.asks.first().is_some_and(|a| a.why.contains(why) && a.readings.len() == 1), "{text}: {r:?}");
        }
        assert!(asked("p95 latency would be 200 ms").iter().any(|w| w.contains("is it a target")));
    }

    #[test]
    fn figures_that_are_not_targets_say_why() {
        for (text, why) in [
            ("p95 latency 515 ms ❌", "measured result"),
            ("Alert when p99 latency exceeds 500 ms for 5 minutes", "alert"),
            ("Availability, for example 99.9% monthly", "example"),
            ("Total estimated RTO: 15 minutes", "estimate"),
            ("Monthly downtime must stay below 45 minutes per month", "allowance"),
            ("The API must allow 100 requests per second per client", "per-client"),
            ("Each shard handles 5,000 writes/sec", "per shard"),
            ("The circuit breaker opens at 30% errors", "circuit breaker"),
            ("k6 is injecting 1100 req/s", "load the test applies"),
            ("99.9 % availability is not achievable on one host", "not achievable"),
        ] {
            let whys = unread(text);
            assert!(whys.iter().any(|w| w.contains(why)), "{text}: {whys:?}");
        }
        // A target still to be decided: its example is offered as a reading.
        let whys = asked("Availability: TBD (e.g., 99.9% monthly)");
        assert!(whys[0].contains("TBD"), "{whys:?}");
        // A named target beside an applied load is still the target.
        assert_eq!(got("injecting 1100 req/s (above the 1000 req/s SLO)"), [("throughput".into(), Op::Ge, 1000.0)]);
    }

    #[test]
    fn other_ways_of_writing() {
        use Op::*;
        for (text, kind, op, value) in [
            ("Service A requests that do not return 5xx: 99%", "success_rate", Ge, 99.0),
            ("availability 99,90 %", "availability", Ge, 99.9),
            ("RPO ≤ 1시간", "rpo", Le, 3600.0),
            ("RTO < 5 分鐘", "rto", Lt, 300.0),
            ("задержка p95 < 500 мс", "latency_p95", Lt, 500.0),
            ("время ответа < 30 с (85-й перц.)", "latency_p85", Lt, 30_000.0),
            ("가용성 99.9% 이상", "availability", Ge, 99.9),
            ("The API must respond within 500 ms for 95 % of requests", "latency_p95", Le, 500.0),
            ("must not exceed 100 milliseconds for 99 % of requests", "latency_p99", Le, 100.0),
            ("Users see at most 90 seconds of disruption", "failover_downtime", Le, 90.0),
            ("Writes may be interrupted for at most 45 seconds", "failover_downtime", Le, 45.0),
            ("Failover latency < 30 s", "failover_downtime", Lt, 30.0),
            ("must restore service within 45 seconds after a zone failure", "failover_downtime", Le, 45.0),
            ("must sustain 5,000 authentication requests per second", "throughput", Ge, 5000.0),
            ("must take 20 order placements/sec", "throughput", Ge, 20.0),
            ("must accept 1,500/min", "throughput", Ge, 25.0),
            ("must carry 1M msgs/sec", "throughput", Ge, 1e6),
            ("P95_Latency < 2 seconds", "latency_p95", Lt, 2000.0),
            ("Availability must be 99.7 % (2.5 nines)", "availability", Ge, 99.7),
            ("99.9 % of requests must succeed over a rolling 28-day window", "availability", Ge, 99.9),
            ("at least 99.5 % of requests must succeed", "success_rate", Ge, 99.5),
        ] {
            let (k, o, v) = one(text);
            assert_eq!((k.as_str(), o, v), (kind, op, value), "{text}");
        }
        assert_eq!(
            got("Search must answer <= 300 ms (P95); <= 500 ms at 2x peak"),
            [("latency_p95".into(), Op::Le, 300.0), ("latency_p95".into(), Op::Le, 500.0)]
        );
        assert_eq!(one("two and a half nines").2, 99.5);
        // One statistic for two figures that each say what they apply to.
        let r = read(&quantity::normalize("API P99 latency < 1s for reads, < 3s for writes"), &Hints::default());
        let got: Vec<(String, f64, Option<String>)> =
            r.found.iter().map(|f| (f.kind.to_string(), f.value, f.scope.clone())).collect();
        assert_eq!(
            got,
            [
                ("latency_p99".to_string(), 1000.0, Some("reads".to_string())),
                ("latency_p99".to_string(), 3000.0, Some("writes".to_string()))
            ]
        );
    }
}
