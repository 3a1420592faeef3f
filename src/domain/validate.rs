//! The one validator every plan passes, whoever wrote it (builtin planner, LLM, a person editing
//! the workflow file). It reports every violation it finds, each naming the step and what was
//! expected, so a planner can be asked to repair all of them at once.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use super::catalogue::{Outputs, StepKind};
use super::plan::Plan;
use super::reference::references;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The step at fault, if any.
    pub step: Option<String>,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.step {
            Some(s) => write!(f, "step `{s}`: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A plan that failed validation: every violation found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid plan {of} ({} problem{}):{}", .violations.len(), if .violations.len() == 1 { "" } else { "s" }, listed(.violations))]
pub struct Invalid {
    /// Which plan: a workflow file, or what a planner answered.
    pub of: String,
    pub violations: Vec<Violation>,
}

/// Each violation on a line of its own, under the headline.
fn listed(violations: &[Violation]) -> String {
    violations.iter().map(|v| format!("\n  - {v}")).collect()
}

static STEP_ID: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-z0-9][a-z0-9-]{0,62}$").expect("static pattern"));

/// A character a terminal or browser would act on instead of showing, in words, if `text` has
/// one: such text could hide what a step does from the person approving it.
fn hidden(text: &str) -> Option<String> {
    let (at, c) = text.chars().enumerate().find(|(_, c)| super::human::is_hidden(*c))?;
    Some(format!(
        "a control character ({} at character {}), which a terminal or browser would act on instead of showing: refused",
        super::human::visible(&c.to_string()),
        at + 1
    ))
}

/// Every string (and key) in params holding a hidden character, by its path.
fn hidden_in(v: &serde_json::Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::String(s) => out.extend(hidden(s).map(|c| (path.to_string(), c))),
        serde_json::Value::Array(a) => {
            a.iter().enumerate().for_each(|(i, v)| hidden_in(v, &format!("{path}[{i}]"), out))
        }
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let here = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                if let Some(c) = hidden(k) {
                    out.push((super::human::visible(&here).into_owned(), c));
                }
                hidden_in(v, &here, out);
            }
        }
        _ => {}
    }
}

pub fn validate(plan: &Plan) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut v = |step: Option<&str>, message: String| out.push(Violation { step: step.map(str::to_string), message });

    if plan.steps.is_empty() {
        v(None, "the plan has no steps".into());
    }
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for s in &plan.steps {
        if !STEP_ID.is_match(&s.id) {
            v(Some(&s.id), "malformed id: expected a slug of lowercase letters, digits and `-` (at most 63), starting with a letter or digit".into());
        }
        if !seen.insert(&s.id) {
            v(Some(&s.id), "duplicate id".into());
        }
    }
    let index = plan.index();
    let requirements: HashMap<&str, &super::requirement::Requirement> =
        plan.requirements.iter().map(|r| (r.id.as_str(), r)).collect();

    for (k, val) in &plan.context {
        if let Some(c) = hidden(k).or_else(|| hidden(val)) {
            v(None, format!("context `{}` holds {c}", super::human::visible(k)));
        }
    }
    for s in &plan.steps {
        let id = Some(s.id.as_str());
        for (field, text) in [("kind", &s.kind), ("description", &s.description)]
            .into_iter()
            .chain(s.needs.iter().map(|n| ("needs", n)))
            .chain(s.covers.iter().map(|c| ("covers", c)))
        {
            if let Some(c) = hidden(text) {
                v(id, format!("`{field}` holds {c}"));
            }
        }
        let mut hidden_params = Vec::new();
        hidden_in(&serde_json::Value::Object(s.params.clone()), "", &mut hidden_params);
        for (path, c) in hidden_params {
            v(id, format!("param `{path}` holds {c}"));
        }
        for n in &s.needs {
            if n == &s.id {
                v(id, "needs itself".into());
            } else if !index.contains_key(n.as_str()) {
                v(id, format!("needs unknown step `{n}`"));
            }
        }
        let Some(kind) = StepKind::parse(&s.kind) else {
            let known: Vec<&str> = StepKind::all().map(|k| k.name()).collect();
            v(id, format!("unknown kind `{}`: expected one of {}", s.kind, known.join(", ")));
            continue;
        };
        if let Err(e) = kind.check_params(&s.params) {
            v(id, format!("params invalid for kind `{}`: {e}", kind.name()));
        }
        if kind.requires_gate() && !s.gate {
            let why = if kind.side_effect() { "has a side effect" } else { "is a human decision" };
            v(id, format!("kind `{}` {why} and must be gated (gate = true)", kind.name()));
        }
        for c in &s.covers {
            match requirements.get(c.as_str()) {
                None => v(id, format!("covers unknown requirement `{c}`")),
                Some(r) if !kind.verifies(&r.kind) => {
                    v(id, format!("covers `{c}` ({}), which a `{}` step cannot verify", r.kind, kind.name()))
                }
                _ => {}
            }
        }
        let refs = references(&s.params);
        if refs.is_empty() {
            continue;
        }
        for (path, r) in refs {
            if !index.contains_key(r.step.as_str()) {
                v(id, format!("param `{path}` references unknown step `{}`", r.step));
                continue;
            }
            if !depends_on(plan, &index, s, &r.step) {
                v(
                    id,
                    format!("param `{path}` references `{}`, which is not among its needs (directly or not)", r.step),
                );
            }
            let target = index.get(r.step.as_str()).and_then(|&i| StepKind::parse(&plan.steps[i].kind));
            if let Some(t) = target {
                if let Outputs::Fixed(names) = t.outputs() {
                    if !names.contains(&r.output.as_str()) {
                        v(id, format!("param `{path}` references output `{}` that a `{}` step does not produce (it produces {})", r.output, t.name(), names.join(", ")));
                    }
                }
            }
        }
    }
    for cycle in find_cycles(plan) {
        v(None, format!("the needs form a cycle: {}", cycle.join(" -> ")));
    }
    let covered: BTreeSet<&str> = plan.steps.iter().flat_map(|s| s.covers.iter().map(String::as_str)).collect();
    for r in &plan.requirements {
        if r.kind.is_measurable() && !covered.contains(r.id.as_str()) {
            v(
                None,
                format!("requirement `{}` ({} {}, line {}) is verified by no step", r.id, r.kind, r.target(), r.line),
            );
        }
    }
    out
}

/// Load tests that could never show the throughput they cover: a fixed arrival rate below the
/// floor. Not part of [`validate`] (a person may plan one on purpose, and its verdict then says
/// what it measured); a model's plan is held to it, since a model that writes such a step has
/// misread the target.
pub fn unreachable_targets(plan: &Plan) -> Vec<Violation> {
    let mut out = Vec::new();
    for s in plan.steps.iter().filter(|s| StepKind::parse(&s.kind) == Some(StepKind::Loadtest)) {
        let Some(rate) = s.params.get("rate").and_then(serde_json::Value::as_f64) else { continue };
        for r in plan.requirements.iter().filter(|r| s.covers.contains(&r.id)) {
            if r.kind == super::requirement::Kind::Throughput
                && matches!(r.op, super::requirement::Op::Ge | super::requirement::Op::Gt)
                && rate < r.value
            {
                out.push(Violation {
                    step: Some(s.id.clone()),
                    message: format!(
                        "covers `{}` (throughput {}) but sends {rate} req/s: it could never show the target; set `rate` above it",
                        r.id,
                        r.target()
                    ),
                });
            }
        }
    }
    out
}

/// Does `step` need `on`, directly or not? A direct need is found at once; otherwise a walk up
/// the needs from `step` that stops as soon as it finds `on` (a reference to the step just
/// before, the common case, costs the same at the twenty-thousandth step as at the first).
fn depends_on(plan: &Plan, index: &HashMap<&str, usize>, step: &super::plan::Step, on: &str) -> bool {
    if step.needs.iter().any(|n| n == on) {
        return true;
    }
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut todo: Vec<&str> = step.needs.iter().map(String::as_str).collect();
    while let Some(n) = todo.pop() {
        if n == on {
            return true;
        }
        if seen.insert(n) {
            if let Some(&i) = index.get(n) {
                todo.extend(plan.steps[i].needs.iter().map(String::as_str));
            }
        }
    }
    false
}

/// The first cycle in the needs graph, as `a -> b -> a`.
pub fn find_cycle(plan: &Plan) -> Option<Vec<String>> {
    find_cycles(plan).into_iter().next()
}

/// The cycles in the needs graph, each as `a -> b -> a` (iterative depth-first search; one
/// cycle per back edge, leaving out a cycle whose steps an earlier one already holds).
pub fn find_cycles(plan: &Plan) -> Vec<Vec<String>> {
    let mut found: Vec<Vec<String>> = Vec::new();
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let index = plan.index();
    let mut mark = vec![Mark::New; plan.steps.len()];
    for root in 0..plan.steps.len() {
        if mark[root] != Mark::New {
            continue;
        }
        // (step, next need to look at)
        let mut path: Vec<(usize, usize)> = vec![(root, 0)];
        mark[root] = Mark::Open;
        while let Some(top) = path.last_mut() {
            let (at, k) = *top;
            top.1 += 1;
            let Some(n) = plan.steps[at].needs.get(k) else {
                mark[at] = Mark::Done;
                path.pop();
                continue;
            };
            let Some(&to) = index.get(n.as_str()) else { continue };
            match mark[to] {
                Mark::Done => {}
                Mark::Open => {
                    let start = path.iter().position(|(s, _)| *s == to).unwrap_or(0);
                    let mut c: Vec<String> = path[start..].iter().map(|(s, _)| plan.steps[*s].id.clone()).collect();
                    let known = found.iter().any(|f| c.iter().all(|id| f.contains(id)));
                    c.push(plan.steps[to].id.clone());
                    if !known {
                        found.push(c);
                    }
                }
                Mark::New => {
                    mark[to] = Mark::Open;
                    path.push((to, 0));
                }
            }
        }
    }
    found
}

/// Steps in dependency order (needs first), stable with the plan's own order: what repeated
/// passes over the plan would give, taking each step whose needs are already taken. A step in
/// (or behind) a cycle is left out; unknown needs are ignored (the validator reports both).
///
/// In pass terms: a step comes in the pass of its last-taken need when it stands after that
/// need in the plan, else in the next pass; the order is by (pass, position). Computed in one
/// topological sweep instead of passes, so it is near-linear in the size of the plan.
pub fn topo_order(plan: &Plan) -> Vec<&str> {
    let index = plan.index();
    let n = plan.steps.len();
    let mut missing = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, s) in plan.steps.iter().enumerate() {
        for need in &s.needs {
            if let Some(&j) = index.get(need.as_str()) {
                missing[i] += 1;
                dependents[j].push(i);
            }
        }
    }
    let mut pass = vec![0usize; n];
    let mut ready: Vec<usize> = (0..n).filter(|&i| missing[i] == 0).collect();
    let mut taken = Vec::with_capacity(n);
    while let Some(j) = ready.pop() {
        taken.push(j);
        for &i in &dependents[j] {
            pass[i] = pass[i].max(pass[j] + usize::from(j > i));
            missing[i] -= 1;
            if missing[i] == 0 {
                ready.push(i);
            }
        }
    }
    taken.sort_by_key(|&i| (pass[i], i));
    taken.into_iter().map(|i| plan.steps[i].id.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::plan::Step;
    use crate::domain::requirement::{Kind, Op, Requirement};
    use serde_json::json;

    fn step(id: &str, kind: &str, needs: &[&str], params: serde_json::Value) -> Step {
        Step {
            id: id.into(),
            kind: kind.into(),
            description: String::new(),
            needs: needs.iter().map(|s| s.to_string()).collect(),
            covers: vec![],
            gate: true,
            params: params.as_object().unwrap().clone(),
        }
    }

    fn plan(steps: Vec<Step>) -> Plan {
        Plan::of("t", steps, vec![Requirement::new("R1", Kind::Rto, Op::Le, 7200.0, 3, "RTO 2h")])
    }

    fn messages(p: &Plan) -> Vec<String> {
        validate(p).iter().map(|v| v.to_string()).collect()
    }

    fn ok_cmd(id: &str, needs: &[&str]) -> Step {
        let mut s = step(id, "command", needs, json!({"run": "true"}));
        s.covers = vec!["R1".into()];
        s
    }

    #[test]
    fn a_good_plan_passes() {
        assert_eq!(messages(&plan(vec![ok_cmd("a", &[]), ok_cmd("b", &["a"])])), Vec::<String>::new());
    }

    #[test]
    fn each_violation_is_named() {
        let cases: Vec<(Vec<Step>, &str)> = vec![
            (vec![ok_cmd("a", &[]), ok_cmd("a", &[])], "step `a`: duplicate id"),
            (vec![ok_cmd("Bad_Id", &[])], "step `Bad_Id`: malformed id"),
            (vec![ok_cmd("a", &["ghost"])], "step `a`: needs unknown step `ghost`"),
            (
                vec![ok_cmd("a", &["c"]), ok_cmd("b", &["a"]), ok_cmd("c", &["b"])],
                "the needs form a cycle: a -> c -> b -> a",
            ),
            (
                vec![ok_cmd("a", &["b"]), ok_cmd("b", &["a"]), ok_cmd("x", &["y"]), ok_cmd("y", &["x"])],
                "the needs form a cycle: x -> y -> x",
            ),
            (vec![ok_cmd("a", &[]), step("x", "teleport", &[], json!({}))], "step `x`: unknown kind `teleport`"),
            (
                vec![step("a", "command", &[], json!({"run": "rm -rf / #\u{1b}[1K\r  $ echo hello"}))],
                "step `a`: param `run` holds a control character (\\e at character 11)",
            ),
            (
                vec![{
                    let mut s = ok_cmd("a", &[]);
                    s.description = "deploy \u{202e}v1.2".into();
                    s
                }],
                "step `a`: `description` holds a control character (<U+202E> at character 8)",
            ),
            (
                vec![step("a", "command", &[], json!({"run": "x", "env": {"K\u{7}": "v"}}))],
                "step `a`: param `env.K\\x07` holds a control character (\\x07 at character 2)",
            ),
            (
                vec![ok_cmd("a", &[]), step("x", "probe", &[], json!({"url": 5}))],
                "step `x`: params invalid for kind `probe`",
            ),
            (
                vec![step("a", "command", &[], json!({"run": "true"}))],
                "requirement `R1` (rto <= 7200 s, line 3) is verified by no step",
            ),
            (
                vec![ok_cmd("a", &[]), {
                    let mut s = step("x", "command", &[], json!({"run": "true"}));
                    s.gate = false;
                    s
                }],
                "step `x`: kind `command` has a side effect and must be gated",
            ),
            (
                vec![ok_cmd("a", &[]), ok_cmd("b", &[]), step("x", "probe", &["b"], json!({"url": "${a.status}"}))],
                "step `x`: param `url` references `a`, which is not among its needs",
            ),
            (
                vec![
                    ok_cmd("a", &[]),
                    step("p", "probe", &[], json!({"url": "http://x"})),
                    step("x", "probe", &["p"], json!({"url": "${p.nope}"})),
                ],
                "output `nope` that a `probe` step does not produce",
            ),
            (
                vec![ok_cmd("a", &[]), {
                    let mut s = step("p", "probe", &[], json!({"url": "http://x"}));
                    s.covers = vec!["R1".into()];
                    s
                }],
                "step `p`: covers `R1` (rto), which a `probe` step cannot verify",
            ),
        ];
        for (steps, expected) in cases {
            let m = messages(&plan(steps));
            assert!(m.iter().any(|m| m.contains(expected)), "expected `{expected}` in {m:#?}");
        }
    }

    #[test]
    fn a_load_test_slower_than_its_throughput_target_is_refused() {
        let reqs = vec![Requirement::new("T1", Kind::Throughput, Op::Ge, 2500.0, 3, "2,500 req/s")];
        let at = |rate: f64| {
            let mut s = step("load", "loadtest", &[], json!({"url": "http://x", "rate": rate, "duration_s": 60}));
            s.covers = vec!["T1".into()];
            unreachable_targets(&Plan::of("t", vec![s], reqs.clone())).iter().map(|v| v.to_string()).collect::<Vec<_>>()
        };
        assert_eq!(
            at(250.0),
            ["step `load`: covers `T1` (throughput >= 2500 req/s) but sends 250 req/s: it could never show the target; set `rate` above it"]
        );
        assert_eq!(at(2625.0), Vec::<String>::new());
    }

    /// The repeated-pass order this sweep must reproduce.
    fn passes(plan: &Plan) -> Vec<&str> {
        let mut done: BTreeSet<&str> = BTreeSet::new();
        let mut out = Vec::new();
        loop {
            let before = out.len();
            for s in &plan.steps {
                if !done.contains(s.id.as_str())
                    && s.needs.iter().all(|n| done.contains(n.as_str()) || plan.step(n).is_none())
                {
                    done.insert(&s.id);
                    out.push(s.id.as_str());
                }
            }
            if out.len() == before {
                return out;
            }
        }
    }

    #[test]
    fn topo_order_is_the_pass_order() {
        let cases: Vec<Vec<Step>> = vec![
            vec![ok_cmd("a", &[]), ok_cmd("b", &["a"]), ok_cmd("c", &[])],
            vec![ok_cmd("c", &["b"]), ok_cmd("b", &["a"]), ok_cmd("a", &[]), ok_cmd("d", &["a"])],
            vec![ok_cmd("x", &["y", "z"]), ok_cmd("y", &[]), ok_cmd("z", &["y"]), ok_cmd("w", &["x", "ghost"])],
            vec![ok_cmd("a", &["c"]), ok_cmd("b", &["a"]), ok_cmd("c", &["b"]), ok_cmd("d", &[]), ok_cmd("e", &["a"])],
        ];
        for steps in cases {
            let p = plan(steps);
            assert_eq!(topo_order(&p), passes(&p));
        }
        // A pseudo-random larger graph.
        let mut seed = 17u64;
        let mut steps = Vec::new();
        for i in 0..200 {
            let mut needs = Vec::new();
            for _ in 0..3 {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let j = (seed >> 33) as usize % 200;
                if j != i {
                    needs.push(format!("s{j}"));
                }
            }
            let mut s = ok_cmd(&format!("s{i}"), &[]);
            // Keep it acyclic: only needs on lower numbers.
            s.needs = needs.into_iter().filter(|n| n[1..].parse::<usize>().unwrap() < i).collect();
            steps.push(s);
        }
        steps.reverse();
        let p = plan(steps);
        assert_eq!(topo_order(&p), passes(&p));
        assert_eq!(find_cycle(&p), None);
    }

    #[test]
    fn transitive_needs_may_be_referenced() {
        let p = plan(vec![
            ok_cmd("a", &[]),
            step("b", "probe", &["a"], json!({"url": "http://x"})),
            step("c", "probe", &["b"], json!({"url": "http://h/${a.host}"})),
        ]);
        assert_eq!(messages(&p), Vec::<String>::new());
        assert_eq!(topo_order(&p), ["a", "b", "c"]);
    }
}
