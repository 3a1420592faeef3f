//! The capacity model and the VPC address check: pure arithmetic from measured figures.
//!
//! N+1 across AZs: with `azs` zones, losing one leaves `azs - 1`, which must still serve the
//! target plus headroom. So `instances_per_az = ceil(target * (1 + headroom) / per_instance /
//! (azs - 1))`. The Auto Scaling group may grow to twice that (scale-out and rolling
//! replacement), which sets the vCPU quota need.

use serde_json::{json, Map, Value};

/// Figures no fleet or network can be drawn from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Error(String);

#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub azs: u64,
    pub instances_per_az: u64,
    pub instances_total: u64,
    pub max_instances: u64,
    pub vcpus: u64,
}

pub fn model(
    target_rps: f64,
    per_instance_rps: f64,
    azs: u32,
    headroom_pct: f64,
    vcpus_per_instance: u32,
) -> Result<Model, Error> {
    if per_instance_rps.is_nan() || per_instance_rps <= 0.0 {
        return Err(Error(format!(
            "one instance serves {per_instance_rps} req/s: no number of instances reaches the target"
        )));
    }
    if azs < 2 {
        return Err(Error("at least 2 AZs are needed to survive the loss of one".into()));
    }
    let need = target_rps * (1.0 + headroom_pct / 100.0);
    let survivors = (azs - 1) as f64;
    let per_az = ((need / per_instance_rps / survivors).ceil() as u64).max(1);
    let total = per_az * azs as u64;
    let max = total * 2;
    Ok(Model {
        azs: azs as u64,
        instances_per_az: per_az,
        instances_total: total,
        max_instances: max,
        vcpus: max * vcpus_per_instance as u64,
    })
}

impl Model {
    pub fn outputs(&self) -> Map<String, Value> {
        json!({
            "azs": self.azs,
            "instances_per_az": self.instances_per_az,
            "instances_total": self.instances_total,
            "min_instances": self.instances_total,
            "max_instances": self.max_instances,
            "vcpus": self.vcpus,
            "albs": 1,
            "nat_gateways": self.azs,
            "nat_gateways_per_az": 1,
            "elastic_ips": self.azs,
        })
        .as_object()
        .cloned()
        .unwrap_or_default()
    }
}

/// `10.0.0.0/16` -> (address, prefix length).
pub fn parse_cidr(s: &str) -> Result<(u32, u8), Error> {
    let bad = || Error(format!("`{s}` is not an IPv4 CIDR block such as 10.0.0.0/16"));
    let (ip, len) = s.split_once('/').ok_or_else(bad)?;
    let ip: std::net::Ipv4Addr = ip.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    if !(16..=28).contains(&len) {
        return Err(Error(format!("`{s}`: a VPC's prefix length must be between 16 and 28")));
    }
    Ok((u32::from(ip), len))
}

/// The first `count` subnets of size `/prefix` in a VPC, in order: `10.0.0.0/24`, `10.0.1.0/24`...
pub fn subnets(vpc_cidr: &str, prefix: u8, count: u32) -> Result<Vec<String>, Error> {
    let (base, len) = parse_cidr(vpc_cidr)?;
    if prefix < len || prefix > 28 {
        return Err(Error(format!("a /{prefix} subnet does not fit in the /{len} VPC {vpc_cidr}")));
    }
    let fit = 1u64 << (prefix - len);
    if (count as u64) > fit {
        return Err(Error(format!("{vpc_cidr} holds {fit} /{prefix} subnets, fewer than {count}")));
    }
    let size = 1u32 << (32 - prefix);
    let start = base & (u32::MAX << (32 - len));
    Ok((0..count).map(|i| format!("{}/{prefix}", std::net::Ipv4Addr::from(start + i * size))).collect())
}

#[derive(Debug, Clone, PartialEq)]
pub struct IpCheck {
    pub ips_per_subnet: u64,
    pub ips_needed_per_subnet: u64,
    pub spare_per_subnet: i64,
}

/// Do `azs` subnets of `/subnet_prefix` fit in the VPC and hold `instances` spread over them
/// (all of them in the surviving zones after an AZ loss), plus what AWS reserves?
pub fn ip_check(vpc_cidr: &str, subnet_prefix: u8, azs: u32, instances: u64, reserved: u64) -> Result<IpCheck, Error> {
    let (_, vpc_len) = parse_cidr(vpc_cidr)?;
    if subnet_prefix < vpc_len {
        return Err(Error(format!("a /{subnet_prefix} subnet does not fit in the /{vpc_len} VPC {vpc_cidr}")));
    }
    let subnets_fit = 1u64 << (subnet_prefix - vpc_len);
    if subnets_fit < azs as u64 {
        return Err(Error(format!(
            "{vpc_cidr} holds {subnets_fit} /{subnet_prefix} subnets, fewer than the {azs} AZs"
        )));
    }
    let per_subnet = 1u64 << (32 - subnet_prefix);
    // After losing a zone, the survivors carry every instance.
    let survivors = (azs as u64).saturating_sub(1).max(1);
    let needed = instances.div_ceil(survivors) + reserved;
    Ok(IpCheck {
        ips_per_subnet: per_subnet,
        ips_needed_per_subnet: needed,
        spare_per_subnet: per_subnet as i64 - needed as i64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n_plus_one_model() {
        // 2,500 req/s + 25 % headroom, 400 req/s per instance, 3 AZs: 3125/400/2 = 3.9 -> 4 per AZ.
        let m = model(2500.0, 400.0, 3, 25.0, 2).unwrap();
        assert_eq!(m, Model { azs: 3, instances_per_az: 4, instances_total: 12, max_instances: 24, vcpus: 48 });
        // Losing one AZ leaves 8 instances: 3,200 req/s >= 3,125.
        assert!((m.instances_total - m.instances_per_az) as f64 * 400.0 >= 3125.0);
        assert!(model(2500.0, 0.0, 3, 25.0, 2).is_err());
        assert!(model(2500.0, 400.0, 1, 25.0, 2).is_err());
    }

    #[test]
    fn subnet_layout() {
        assert_eq!(subnets("10.0.0.0/16", 24, 3).unwrap(), ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"]);
        assert_eq!(subnets("172.16.0.0/20", 22, 4).unwrap()[3], "172.16.12.0/22");
        assert!(subnets("10.0.0.0/24", 26, 5).is_err());
    }

    #[test]
    fn ip_capacity() {
        let c = ip_check("10.0.0.0/16", 24, 3, 24, 14).unwrap();
        assert_eq!((c.ips_per_subnet, c.ips_needed_per_subnet, c.spare_per_subnet), (256, 26, 230));
        let c = ip_check("10.0.0.0/24", 28, 3, 60, 14).unwrap();
        assert!(c.spare_per_subnet < 0);
        assert!(ip_check("10.0.0.0/24", 26, 5, 1, 14).unwrap_err().to_string().contains("fewer than the 5 AZs"));
        assert!(parse_cidr("10.0.0/16").is_err());
    }
}
