//! The label families and the clause patterns, as data: statistics, kinds (in five
//! languages), look-alikes, negations, hedges, today's figures, the clauses that make a figure
//! not a target.

use crate::domain::quantity::Class;
use regex::Regex;
use std::sync::LazyLock;

use super::*;

pub(crate) fn re(p: &str) -> Regex {
    Regex::new(&format!("(?i){p}")).expect("static label pattern")
}

pub(crate) const TIME: &[Class] = &[Class::Time];
pub(crate) const PCT: &[Class] = &[Class::Percent];
pub(crate) const RATE: &[Class] = &[Class::Rate];
pub(crate) const ALL: &[Class] = &[Class::Time, Class::Percent, Class::Rate];
pub(crate) const PCT_RATE: &[Class] = &[Class::Percent, Class::Rate];

/// Look-alikes, found first: a label of another kind inside one is not a label.
pub(crate) static IGNORE: LazyLock<Vec<(Regex, &'static str, &'static [Class])>> = LazyLock::new(|| {
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

pub(crate) static STAT_P: LazyLock<Regex> = LazyLock::new(|| re(r"\bt?p(?P<p>\d{2}(?:\.\d+)?)\b"));
pub(crate) static STAT_NTH: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?P<p>\d{1,3}(?:\.\d+)?)(?:st|nd|rd|th)?[\s-]*percentiles?\b"));
pub(crate) static STAT_PCTL: LazyLock<Regex> = LazyLock::new(|| re(r"\bpercentile\s+(?P<p>\d{1,2}(?:\.\d+)?)\b"));
/// "85-й перцентиль", "99分位", "99번째 백분위": percentiles in other languages.
pub(crate) static STAT_INTL: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?P<p>\d{1,2}(?:\.\d+)?)\s*-?\s*(?:й|го|ый|ой)?\s*(?:перц\w*|процентил\w*)|(?P<q>\d{1,2}(?:\.\d+)?)\s*(?:分位|百分位|번째\s*백분위|백분위)",
    )
});
pub(crate) static STAT_MEDIAN: LazyLock<Regex> = LazyLock::new(|| re(r"\bmedian\b"));
pub(crate) static STAT_AVG: LazyLock<Regex> = LazyLock::new(|| re(r"\b(?:typical\s+)?(?:average|mean|avg)\b"));

pub(crate) static KINDS: LazyLock<Vec<(Regex, Label)>> = LazyLock::new(|| {
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
pub(crate) static NEGATED: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?:\bdo(?:es)?\s+not|\bdid\s+not|\bdon'?t|\bdoesn'?t|\bwithout|\bnever|\bno|\bне|\bбез)\s+(?:\w+\s+)?(?:in\s+)?(?:an?\s+)?$",
    )
});

/// Words that make a figure a wish rather than a commitment: asked, not read.
pub(crate) static UNSURE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:stretch(?:\s+(?:goals?|targets?))?|aspirational|aspiration|nice[\s-]to[\s-]have|ideally|would\s+like|if\s+possible|best[\s-]effort|not\s+yet\s+agreed|to\s+be\s+(?:agreed|confirmed|decided))\b",
    )
});

/// Labels in Russian, Korean, Chinese and Japanese (no word boundaries in CJK text).
pub(crate) static KINDS_INTL: LazyLock<Vec<(Regex, Label)>> = LazyLock::new(|| {
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
pub(crate) static CURRENT_AFTER: LazyLock<Regex> = LazyLock::new(|| re(r"^(?:today|currently|presently)$"));

/// Words before a figure (in its clause) that make it a description of today, not a target.
pub(crate) static CURRENT: LazyLock<Regex> = LazyLock::new(|| {
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

/// What makes a figure's clause say it is not a target: the family and why.
pub(crate) static NOT_TARGET: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
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

pub(crate) static OBJECTIVE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?:rto|rpo|recovery\s+(?:time|point)\s+objectives?)\b|恢复|恢復|복구"));

/// A measurement window of days or longer.
pub static LONG_WINDOW: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:over|across|during|in|within)\s+(?:a|any|each|the)?\s*(?:rolling|calendar|trailing)?\s*\d+[\s-]?(?:days?|d|weeks?|w|months?)\b|\b(?:rolling|trailing)\s+\d+[\s-]?(?:days?|d|weeks?|months?)\b|\b(?:per|a|each)\s+(?:month|quarter|year)\b|\bmonthly\b|\bquarterly\b|скользящ\w*\s+\d+\s*(?:дн\w*|дней|недел\w*)|\bза\s+\d+\s*(?:дн\w*|дней)|\bв\s+месяц",
    )
});

/// A sentence that names its figure a target ("**Target:** 1,000 req/s", "production targets
/// 10,000 TPS"): read even in a section of results.
pub(crate) static NAMES_TARGET: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^\W*(?:targets?|slos?|objectives?|goals?|requirements?|thresholds?|цель|целевое\s+значение|목표|目标|目標)\s*:|\b(?:targets?|objectives?|goals?)\s+(?:of\s+|is\s+|are\s+|=\s*)?(?:[<>≤≥~]=?\s*)?\d",
    )
});

/// The word right after or before a figure calls it the target: "500 ns target", "the 1000 req/s
/// SLO", "SLO 99.5%", "target of 200 ms".
pub(crate) static TARGET_AFTER: LazyLock<Regex> = LazyLock::new(|| re(r"^\s*(?:targets?|slos?|objectives?)\b"));
pub(crate) static TARGET_BEFORE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?:targets?|slos?|objectives?)(?:\s+(?:of|is))?\s*[:=]?\s*(?:[<>≤≥]=?\s*)?$"));

/// Words of a result: a sentence with them reports, even when it names the target.
pub(crate) static RESULT_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:results?|pass(?:es|ed)?|fail(?:s|ed)?|miss(?:es|ed)?|actual|measured|achieved|observed|vs\.?|versus)\b|[✅❌✓✗✔✘]",
    )
});

/// "TBD": a target still to be decided.
pub(crate) static TBD: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?:tbd|tba|to\s+be\s+(?:decided|defined|determined|agreed))\b"));

/// Words that make a range a target ("between 2 and 3 s is acceptable"): which bound is then
/// the one that holds is clear from the kind.
pub(crate) static RANGE_OK: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?:acceptable|tolerable|allowed|must|shall|required)\b"));

/// Words that state a figure as a fact rather than a target.
pub(crate) static STATED: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\s=\s|\bwould\s+(?:be|lose|take|need)\b|\bdepends?\s+on\b|\b(?:takes?|took|lasts?|lasted)\b|\b(?:could|might)\b|\btypically\b|\busually\b|\bapproximately\b|\b(?:around|about|roughly)\s+\d|~\s*\d|≈|\bachiev(?:e|es|ing)\b|\breach(?:es|ing)?\b|\bto\s+reach\b",
    )
});

/// Words that make a figure a commitment: a promise, or naming it a target.
pub(crate) static COMMITTED: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:shall|must|should|will|needs?\s+to|has\s+to|have\s+to|required?|requires|guarantees?|commit(?:s|ted|ment)?|targets?|objectives?|slos?|slas?|goals?|aims?\s+(?:at|to|for)|thresholds?|criteria|criterion|acceptance|budgeted|acceptable|tolerable|allowed|handles?|serves?|supports?|sustains?|withstands?|processes|accepts?|delivers?|expected\s+to)\b",
    )
});
