//! `quota`: an AWS service quota against what the plan needs.
//!
//! - preview: GetServiceQuota (the applied value), falling back to GetAWSDefaultServiceQuota;
//!   enough -> the step succeeds with the figures as evidence, no gate; short -> the artifact to
//!   approve is the increase request (service, quota, current, desired);
//! - submit: adopt an open request for the same quota whose desired value covers the need
//!   (ListRequestedServiceQuotaChangeHistoryByQuota), else file RequestServiceQuotaIncrease; the
//!   lookup comes first, so a crash between filing and recording never files a second request
//!   (reconcile is the same lookup);
//! - poll: GetRequestedServiceQuotaChange with backoff (1 min doubling to 6 h) across days;
//!   APPROVED succeeds, DENIED / NOT_APPROVED / CASE_CLOSED / INVALID fail with AWS's status.

use async_trait::async_trait;
use aws_sdk_servicequotas::types::{RequestStatus, RequestedServiceQuotaChange};
use aws_sdk_servicequotas::Client;
use serde_json::{json, Map, Value};

use super::{obj, typed, Ctx, Error, Executor, Outcome, Preview, Result};
use crate::aws::{self, Aws, SERVICE_QUOTAS};
use crate::domain::catalogue::QuotaParams;
use crate::domain::requirement::fmt_num;

pub struct Quota;

/// The quota as AWS states it now.
struct Current {
    region: String,
    service: String,
    code: String,
    name: String,
    value: f64,
    /// `applied` or `default`.
    source: &'static str,
    /// What the plan adds and what the account already uses: the quota must hold both.
    required: f64,
    in_use: f64,
}

impl Current {
    fn evidence(&self) -> Map<String, Value> {
        obj(json!({
            "region": self.region, "service_code": self.service, "quota_code": self.code,
            "quota_name": self.name, "applied_value": self.value, "value_source": self.source,
            "required_value": self.required, "in_use": self.in_use,
        }))
    }
}

/// A Service Quotas client and the account's side of it.
struct Quotas {
    client: Client,
    aws: Aws,
}

async fn client(ctx: &Ctx, p: &QuotaParams) -> Result<Quotas> {
    let aws = aws::config(p.region.as_deref(), &ctx.context).await?;
    Ok(Quotas { client: Client::new(&aws.conf), aws })
}

async fn current(ctx: &Ctx, params: &Map<String, Value>) -> Result<(Quotas, QuotaParams, Current)> {
    let p: QuotaParams = typed(params)?;
    let in_use = p.in_use.as_ref().map(|u| u.get().copied()).transpose()?.unwrap_or(0.0);
    let required = *p.required.get()? + in_use;
    let q = client(ctx, &p).await?;
    let c = &q.client;
    let code = match &p.quota_code {
        Some(code) => code.clone(),
        None => by_name(&q, &p.service_code, p.quota_name.as_deref().unwrap_or_default()).await?,
    };
    let target = format!("{}/{code}", p.service_code);
    let applied = c.get_service_quota().service_code(&p.service_code).quota_code(&code).send().await;
    let (quota, source) = match applied {
        Ok(out) => (out.quota, "applied"),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_resource_exception()) => {
            let d = c
                .get_aws_default_service_quota()
                .service_code(&p.service_code)
                .quota_code(&code)
                .send()
                .await
                .map_err(|e| q.aws.error(SERVICE_QUOTAS, format!("GetAWSDefaultServiceQuota {target}"), &e))?;
            (d.quota, "default")
        }
        Err(e) => return Err(q.aws.error(SERVICE_QUOTAS, format!("GetServiceQuota {target}"), &e).into()),
    };
    let quota = quota.ok_or_else(|| Error::Step(format!("AWS returned no quota for {target}")))?;
    let cur = Current {
        region: q.aws.region.clone(),
        service: p.service_code.clone(),
        name: quota.quota_name().map(str::to_string).or(p.quota_name.clone()).unwrap_or_default(),
        value: quota.value().unwrap_or(0.0),
        code,
        source,
        required,
        in_use,
    };
    Ok((q, p, cur))
}

async fn by_name(q: &Quotas, service: &str, name: &str) -> Result<String> {
    let mut pages = q.client.list_service_quotas().service_code(service).into_paginator().items().send();
    while let Some(item) = pages.next().await {
        let item = item.map_err(|e| q.aws.error(SERVICE_QUOTAS, format!("ListServiceQuotas {service}"), &e))?;
        if item.quota_name() == Some(name) {
            return item
                .quota_code()
                .map(str::to_string)
                .ok_or_else(|| Error::Step(format!("quota `{name}` has no code")));
        }
    }
    Err(Error::Step(format!("no quota named `{name}` in service `{service}`")))
}

fn is_open(r: &RequestedServiceQuotaChange) -> bool {
    matches!(r.status(), Some(RequestStatus::Pending) | Some(RequestStatus::CaseOpened))
}

/// Next poll after `polls` polls: 1 min, doubling, at most 6 h.
fn backoff_ms(polls: u64) -> u64 {
    (60_000u64 << polls.min(9)).min(6 * 3600 * 1000)
}

fn waiting(ctx: &Ctx, r: &RequestedServiceQuotaChange, polls: u64, how: &str, cur: &Current) -> Result<Outcome> {
    let id = r.id().unwrap_or_default();
    Ok(Outcome::Wait {
        next_poll_at: ctx.clock.now_ms() + backoff_ms(polls),
        note: format!(
            "{how} request {id} for {}/{} ({} -> {}): {}",
            cur.service,
            cur.code,
            fmt_num(cur.value),
            fmt_num(r.desired_value().unwrap_or(cur.required)),
            r.status().map(|s| s.as_str()).unwrap_or("PENDING")
        ),
        handle: json!({"request_id": id, "polls": polls, "case_id": r.case_id(), "desired_value": r.desired_value()}),
    })
}

impl Quota {
    /// Adopt an open request that covers the need, else file one.
    async fn file_or_adopt(&self, ctx: &Ctx, params: &Map<String, Value>) -> Result<Outcome> {
        let (q, _p, cur) = current(ctx, params).await?;
        if cur.value >= cur.required {
            return Ok(Outcome::Done { outputs: outputs(&cur, None), evidence: cur.evidence() });
        }
        let target = format!("{}/{}", cur.service, cur.code);
        let history = q
            .client
            .list_requested_service_quota_change_history_by_quota()
            .service_code(&cur.service)
            .quota_code(&cur.code)
            .send()
            .await
            .map_err(|e| {
                q.aws.error(SERVICE_QUOTAS, format!("ListRequestedServiceQuotaChangeHistoryByQuota {target}"), &e)
            })?
            .requested_quotas
            .unwrap_or_default();
        if let Some(r) = history.iter().find(|r| is_open(r) && r.desired_value().unwrap_or(0.0) >= cur.required) {
            return waiting(ctx, r, 0, "adopted open", &cur);
        }
        let filed = q
            .client
            .request_service_quota_increase()
            .service_code(&cur.service)
            .quota_code(&cur.code)
            .desired_value(cur.required)
            .send()
            .await
            .map_err(|e| {
                q.aws.error(
                    SERVICE_QUOTAS,
                    format!("RequestServiceQuotaIncrease {target} to {}", fmt_num(cur.required)),
                    &e,
                )
            })?;
        match filed.requested_quota {
            Some(r) => waiting(ctx, &r, 0, "filed", &cur),
            None => Err(Error::Step("RequestServiceQuotaIncrease returned no request".into())),
        }
    }
}

fn outputs(cur: &Current, request: Option<&str>) -> Map<String, Value> {
    obj(json!({"applied_value": cur.value, "required_value": cur.required, "request_id": request}))
}

#[async_trait]
impl Executor for Quota {
    async fn preview(&self, ctx: &Ctx, params: &Map<String, Value>) -> Result<Preview> {
        let (_, _, cur) = current(ctx, params).await?;
        if cur.value >= cur.required {
            return Ok(Preview::Nothing(Outcome::Done { outputs: outputs(&cur, None), evidence: cur.evidence() }));
        }
        Ok(Preview::Approve(format!(
            "request a service quota increase in {}:\n  service: {}\n  quota:   {} {}\n  current: {} ({})\n  desired: {}{}\n",
            cur.region,
            cur.service,
            cur.code,
            cur.name,
            fmt_num(cur.value),
            cur.source,
            fmt_num(cur.required),
            if cur.in_use > 0.0 {
                format!(" ({} in use + {} for the plan)", fmt_num(cur.in_use), fmt_num(cur.required - cur.in_use))
            } else {
                String::new()
            }
        )))
    }

    async fn submit(&self, ctx: &Ctx, params: &Map<String, Value>, _token: &str) -> Result<Outcome> {
        self.file_or_adopt(ctx, params).await
    }

    async fn poll(&self, ctx: &Ctx, params: &Map<String, Value>, handle: &Value) -> Result<Outcome> {
        let (q, _p, cur) = current(ctx, params).await?;
        let id = handle.get("request_id").and_then(Value::as_str).unwrap_or_default().to_string();
        let polls = handle.get("polls").and_then(Value::as_u64).unwrap_or(0) + 1;
        let r = q
            .client
            .get_requested_service_quota_change()
            .request_id(&id)
            .send()
            .await
            .map_err(|e| q.aws.error(SERVICE_QUOTAS, format!("GetRequestedServiceQuotaChange {id}"), &e))?
            .requested_quota
            .ok_or_else(|| Error::Step(format!("GetRequestedServiceQuotaChange {id}: no request returned")))?;
        let status = r.status().map(|s| s.as_str().to_string()).unwrap_or_default();
        match r.status() {
            Some(RequestStatus::Pending) | Some(RequestStatus::CaseOpened) | None => {
                waiting(ctx, &r, polls, "open", &cur)
            }
            Some(RequestStatus::Approved) => {
                let granted = r.desired_value().unwrap_or(cur.required).max(cur.value);
                let mut evidence = cur.evidence();
                evidence.insert("applied_value".into(), json!(granted));
                evidence.insert("request_id".into(), json!(id));
                evidence.insert("request_status".into(), json!(status));
                evidence.insert("case_id".into(), json!(r.case_id()));
                let mut out = outputs(&cur, Some(&id));
                out.insert("applied_value".into(), json!(granted));
                Ok(Outcome::Done { outputs: out, evidence })
            }
            _ => Err(Error::Step(format!(
                "AWS answered {status} to quota increase request {id} for {}/{} ({} -> {}){}",
                cur.service,
                cur.code,
                fmt_num(cur.value),
                fmt_num(r.desired_value().unwrap_or(cur.required)),
                r.case_id().map(|c| format!(", support case {c}")).unwrap_or_default()
            ))),
        }
    }

    async fn reconcile(&self, ctx: &Ctx, params: &Map<String, Value>, _token: &str) -> Result<Option<Outcome>> {
        // The lookup before filing is the reconciliation: a request filed before the crash is adopted.
        self.file_or_adopt(ctx, params).await.map(Some)
    }
}
