//! The report as JUnit XML: one test case per requirement, so CI systems show the verdicts
//! natively. A failing requirement is a failure (target against measured); an unverified one
//! is a failure too (no evidence is no pass); a promise no figure can verify is skipped.

use super::model::Report;
use crate::domain::human;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub fn render(r: &Report) -> String {
    let failures = r.requirements.iter().filter(|q| q.measurable && q.verdict != "pass").count();
    let skipped = r.requirements.iter().filter(|q| !q.measurable).count();
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"flow\" tests=\"{n}\" failures=\"{failures}\">\n  <testsuite name=\"{rb}\" tests=\"{n}\" failures=\"{failures}\" skipped=\"{skipped}\" timestamp=\"{at}\">\n",
        n = r.requirements.len(),
        rb = esc(&r.runbook),
        at = esc(&r.generated_at),
    );
    for q in &r.requirements {
        x.push_str(&format!(
            "    <testcase classname=\"{}.{}\" name=\"{}: {}\">",
            esc(&r.runbook),
            esc(&q.kind),
            esc(&q.id),
            esc(&q.text)
        ));
        let measured: Vec<String> = q.evidence.iter().map(|m| m.describe()).collect();
        // Every case carries its target and figures, passing ones too: CI shows them.
        x.push_str(&format!(
            "\n      <properties>\n        <property name=\"target\" value=\"{}\"/>\n        <property name=\"source\" value=\"{}:{}\"/>\n",
            esc(&q.target),
            esc(&q.source),
            q.line
        ));
        for m in &q.evidence {
            x.push_str(&format!(
                "        <property name=\"{}\" value=\"{}\"/>\n        <property name=\"{} step\" value=\"{}\"/>\n",
                esc(&human::metric_name(&m.metric)),
                esc(&human::metric(&m.metric, m.value)),
                esc(&human::metric_name(&m.metric)),
                esc(&m.step)
            ));
        }
        if let Some(at) = &q.measured_at {
            x.push_str(&format!("        <property name=\"measured at\" value=\"{}\"/>\n", esc(at)));
        }
        x.push_str("      </properties>\n      ");
        match (q.measurable, q.verdict.as_str()) {
            (false, "monitoring") => x.push_str("<skipped message=\"verified by monitoring after launch\"/>"),
            (false, _) => x.push_str("<skipped message=\"not measurable: check by hand\"/>"),
            (true, "pass") => {}
            (true, "fail") => x.push_str(&format!(
                "<failure message=\"target {} ({}:{}), measured {}\"/>",
                esc(&q.target),
                esc(&q.source),
                q.line,
                esc(&measured.join("; "))
            )),
            (true, _) => x.push_str(&format!(
                "<failure message=\"target {}: unverified: {}\"/>",
                esc(&q.target),
                esc(q.why.as_deref().unwrap_or("no step has measured it"))
            )),
        }
        let figures: Vec<String> = q
            .evidence
            .iter()
            .map(|m| format!("{} {} ({})", human::metric_name(&m.metric), human::metric(&m.metric, m.value), m.step))
            .collect();
        x.push_str(&format!(
            "\n      <system-out>{}: target {}; {}</system-out>\n    </testcase>\n",
            esc(&q.verdict),
            esc(&q.target),
            esc(&if figures.is_empty() { "no figure measured".to_string() } else { figures.join("; ") })
        ));
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}
