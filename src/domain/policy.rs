//! Approval policy: who may approve which steps, how many distinct people must, and that the
//! person who planned or last edited a step cannot be its only approver. Declared in
//! `flow.toml` (`[[approval]]` rules), journaled when it changes, and applied by the lifecycle's
//! approve rule (an approval short of the policy is recorded as partial and the step keeps
//! waiting, saying what is still needed) and again before an approved step's effect (a stricter
//! policy applies to a step already approved at once). Pure.
//!
//! ```toml
//! [[approval]]
//! kinds = ["changeset", "failover_drill", "restore_drill"]
//! min_approvers = 2
//! not_author = true
//!
//! [[approval]]
//! steps = ["go-no-go"]
//! require = ["arn:aws:sts::*:assumed-role/ReleaseManager/*"]
//! ```

use serde::{Deserialize, Serialize};

use super::lifecycle::Approval;
use super::plan::Step;

/// The rules, in the order `flow.toml` gives them. Every rule that matches a step applies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default, rename = "approval")]
    pub rules: Vec<Rule>,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

/// One rule: which steps it covers and what their approval needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The step kinds it covers (`changeset`, `approval` ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    /// The step ids it covers. With neither kinds nor steps, it covers every gated step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<String>,
    /// Who may approve: identities or patterns with `*` (`arn:aws:sts::*:assumed-role/Deployer/*`,
    /// `alice`). Empty: anyone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// How many distinct identities must approve.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub min_approvers: u32,
    /// Whoever planned or last edited the step cannot be its only approver.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_author: bool,
    /// Each of these (identities or patterns) must be among the approvers: named roles for a
    /// decision.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub require: Vec<String>,
}

/// Does `pattern` (with `*` for any run of characters) match `s` whole?
pub fn matches(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

impl Rule {
    fn covers(&self, step: &Step) -> bool {
        if self.kinds.is_empty() && self.steps.is_empty() {
            return step.gated();
        }
        self.kinds.contains(&step.kind) || self.steps.contains(&step.id)
    }

    /// In words, for `flow status`: `2 distinct approvers, not the author alone, from: a, b`.
    pub fn describe(&self) -> String {
        let mut what = Vec::new();
        if self.min_approvers > 1 {
            what.push(format!("{} distinct approvers", self.min_approvers));
        }
        if self.not_author {
            what.push("not its author alone".to_string());
        }
        if !self.approvers.is_empty() {
            what.push(format!("approvers among {}", self.approvers.join(", ")));
        }
        if !self.require.is_empty() {
            what.push(format!("approved by each of {}", self.require.join(", ")));
        }
        if what.is_empty() {
            what.push("one approver".into());
        }
        let on = match (self.kinds.is_empty(), self.steps.is_empty()) {
            (true, true) => "every gated step".to_string(),
            _ => [self.kinds.join(", "), self.steps.join(", ")]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(", "),
        };
        format!("{on}: {}", what.join("; "))
    }
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn rules_for<'a>(&'a self, step: &'a Step) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules.iter().filter(move |r| r.covers(step))
    }

    /// May `who` approve `step` at all? Why not, if not.
    pub fn allowed(&self, step: &Step, who: &str) -> Result<(), NotAllowed> {
        for r in self.rules_for(step) {
            if !r.approvers.is_empty() && !r.approvers.iter().any(|p| matches(p, who)) {
                return Err(NotAllowed { who: who.into(), step: step.id.clone(), allowed: r.approvers.join(", ") });
            }
        }
        Ok(())
    }

    /// What `approvals` (of one artifact, by distinct identities) still lack under this policy;
    /// empty when they are enough. `author` planned or last edited the step.
    pub fn missing(&self, step: &Step, approvals: &[Approval], author: Option<&str>) -> Vec<String> {
        let who: Vec<&str> = approvals.iter().map(|a| a.by.as_str()).collect();
        let mut out = Vec::new();
        let mut need = 1u32;
        for r in self.rules_for(step) {
            need = need.max(r.min_approvers);
            if r.not_author {
                if let Some(a) = author {
                    if !who.is_empty() && who.iter().all(|w| *w == a) {
                        out.push(format!("an approver other than {a}, who planned or last edited it"));
                    }
                }
            }
            for req in &r.require {
                if !who.iter().any(|w| matches(req, w)) {
                    out.push(format!("an approval by {req}"));
                }
            }
        }
        let have = who.len() as u32;
        if have < need {
            out.insert(
                0,
                format!("{} more approver{} ({have} of {need})", need - have, if need - have == 1 { "" } else { "s" }),
            );
        }
        out.dedup();
        out
    }
}

/// Who may not approve a step under the policy, and who may.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{who} may not approve `{step}`: the approval policy allows {allowed}")]
pub struct NotAllowed {
    pub who: String,
    pub step: String,
    pub allowed: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn step(id: &str, kind: &str) -> Step {
        Step {
            id: id.into(),
            kind: kind.into(),
            description: String::new(),
            needs: vec![],
            covers: vec![],
            gate: true,
            params: Map::new(),
        }
    }

    fn by(who: &[&str]) -> Vec<Approval> {
        who.iter()
            .map(|w| Approval {
                by: w.to_string(),
                as_name: None,
                at: "t".into(),
                comment: None,
                artifact_digest: "a".into(),
                params_digest: "p".into(),
            })
            .collect()
    }

    #[test]
    fn patterns() {
        for (p, s, want) in [
            ("alice", "alice", true),
            ("alice", "alicex", false),
            ("arn:aws:sts::*:assumed-role/Deployer/*", "arn:aws:sts::123:assumed-role/Deployer/bob", true),
            ("arn:aws:sts::*:assumed-role/Deployer/*", "arn:aws:sts::123:assumed-role/Reader/bob", false),
            ("*", "anyone", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "acb", false),
        ] {
            assert_eq!(matches(p, s), want, "{p} ~ {s}");
        }
    }

    /// (step, approvers so far, author, what is missing).
    type Case<'a> = (&'a Step, Vec<&'a str>, Option<&'a str>, Vec<&'a str>);

    #[test]
    fn policy_table() {
        let two = Rule {
            kinds: vec!["changeset".into()],
            steps: vec![],
            approvers: vec![],
            min_approvers: 2,
            not_author: true,
            require: vec![],
        };
        let release = Rule {
            kinds: vec![],
            steps: vec!["go-no-go".into()],
            approvers: vec![],
            min_approvers: 1,
            not_author: false,
            require: vec!["*:assumed-role/ReleaseManager/*".into()],
        };
        let p = Policy { rules: vec![two, release] };
        let cs = step("net", "changeset");
        let go = step("go-no-go", "approval");
        let cmd = step("deploy", "command");
        let cases: Vec<Case> = vec![
            (&cmd, vec!["ana"], Some("ana"), vec![]),
            (&cs, vec!["ana"], Some("bob"), vec!["1 more approver (1 of 2)"]),
            (&cs, vec!["ana", "carl"], Some("bob"), vec![]),
            (
                &cs,
                vec!["bob"],
                Some("bob"),
                vec!["1 more approver (1 of 2)", "an approver other than bob, who planned or last edited it"],
            ),
            (&cs, vec!["bob", "ana"], Some("bob"), vec![]),
            (
                &go,
                vec!["arn:aws:sts::1:assumed-role/Dev/x"],
                None,
                vec!["an approval by *:assumed-role/ReleaseManager/*"],
            ),
            (&go, vec!["arn:aws:sts::1:assumed-role/ReleaseManager/x"], None, vec![]),
        ];
        for (s, who, author, want) in cases {
            assert_eq!(p.missing(s, &by(&who), author), want, "{} by {who:?}", s.id);
        }
        let only = Policy {
            rules: vec![Rule {
                kinds: vec![],
                steps: vec![],
                approvers: vec!["arn:aws:iam::*:user/ops-*".into()],
                min_approvers: 1,
                not_author: false,
                require: vec![],
            }],
        };
        assert!(only.allowed(&cs, "arn:aws:iam::1:user/ops-ana").is_ok());
        assert_eq!(
            only.allowed(&cs, "arn:aws:iam::1:user/dev-bob").unwrap_err().to_string(),
            "arn:aws:iam::1:user/dev-bob may not approve `net`: the approval policy allows arn:aws:iam::*:user/ops-*"
        );
        let text: Policy = toml::from_str(
            "[[approval]]\nkinds = [\"changeset\"]\nmin_approvers = 2\nnot_author = true\n[[approval]]\nsteps = [\"go-no-go\"]\nrequire = [\"lead\"]\n",
        )
        .unwrap();
        assert_eq!(text.rules.len(), 2);
        assert_eq!(text.rules[0].describe(), "changeset: 2 distinct approvers; not its author alone");
    }
}
