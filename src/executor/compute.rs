//! `capacity_model` and `ip_capacity`: pure arithmetic over earlier outputs
//! ([`crate::domain::capacity`]), recorded as outputs and evidence.

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::{obj, typed, Ctx, Error, Executor, Outcome, Preview, Result};
use crate::domain::capacity;
use crate::domain::catalogue::{CapacityModelParams, IpCapacityParams};

pub struct CapacityModel;
pub struct IpCapacity;

fn model(params: &Map<String, Value>) -> Result<(CapacityModelParams, capacity::Model)> {
    let p: CapacityModelParams = typed(params)?;
    let m =
        capacity::model(*p.target_rps.get()?, *p.per_instance_rps.get()?, p.azs, p.headroom_pct, p.vcpus_per_instance)?;
    Ok((p, m))
}

#[async_trait]
impl Executor for CapacityModel {
    async fn preview(&self, _ctx: &Ctx, params: &Map<String, Value>) -> Result<Preview> {
        let (p, m) = model(params)?;
        Ok(Preview::Approve(format!(
            "{} instances per AZ x {} AZs = {} instances ({} at most, {} vCPUs) for {} req/s + {}% headroom at {} req/s each",
            m.instances_per_az, m.azs, m.instances_total, m.max_instances, m.vcpus,
            p.target_rps.get()?, p.headroom_pct, p.per_instance_rps.get()?
        )))
    }

    async fn submit(&self, _ctx: &Ctx, params: &Map<String, Value>, _token: &str) -> Result<Outcome> {
        let (p, m) = model(params)?;
        let outputs = m.outputs();
        let mut evidence = outputs.clone();
        evidence.insert("target_rps".into(), json!(p.target_rps.get().ok()));
        evidence.insert("per_instance_rps".into(), json!(p.per_instance_rps.get().ok()));
        evidence.insert("headroom_pct".into(), json!(p.headroom_pct));
        Ok(Outcome::Done { outputs, evidence })
    }
}

fn ip(params: &Map<String, Value>) -> Result<(IpCapacityParams, capacity::IpCheck)> {
    let p: IpCapacityParams = typed(params)?;
    let c = capacity::ip_check(&p.vpc_cidr, p.subnet_prefix, p.azs, *p.instances.get()?, p.reserved_per_subnet)?;
    Ok((p, c))
}

#[async_trait]
impl Executor for IpCapacity {
    async fn preview(&self, _ctx: &Ctx, params: &Map<String, Value>) -> Result<Preview> {
        let (p, c) = ip(params)?;
        Ok(Preview::Approve(format!(
            "{} /{} subnets in {}: {} addresses each, {} needed",
            p.azs, p.subnet_prefix, p.vpc_cidr, c.ips_per_subnet, c.ips_needed_per_subnet
        )))
    }

    async fn submit(&self, _ctx: &Ctx, params: &Map<String, Value>, _token: &str) -> Result<Outcome> {
        let (p, c) = ip(params)?;
        if c.spare_per_subnet < 0 {
            return Err(Error::Step(format!(
                "a /{} subnet has {} addresses but {} are needed per AZ (instances after losing one AZ plus {} reserved): use a larger subnet or VPC",
                p.subnet_prefix, c.ips_per_subnet, c.ips_needed_per_subnet, p.reserved_per_subnet
            )));
        }
        let outputs = obj(json!({
            "ips_per_subnet": c.ips_per_subnet,
            "ips_needed_per_subnet": c.ips_needed_per_subnet,
            "spare_per_subnet": c.spare_per_subnet,
        }));
        Ok(Outcome::Done { evidence: outputs.clone(), outputs })
    }
}
