//! What runs, as a picture: the setup `flow assess` discovered, drawn as draw.io's XML (with
//! its AWS shapes: the VPC, each AZ, public and private subnets, NAT gateways, instances, load
//! balancers), Mermaid or Graphviz DOT. Each private subnet has an arrow to the NAT gateway its
//! default route uses, so a zonal NAT serving other AZs shows as arrows crossing AZs.

use std::collections::BTreeMap;

use crate::domain::assess::Setup;

/// Text for XML attributes and labels.
fn xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const GROUP: &str = "points=[[0,0],[0.25,0],[0.5,0],[0.75,0],[1,0],[1,0.25],[1,0.5],[1,0.75],[1,1],[0.75,1],[0.5,1],[0.25,1],[0,1],[0,0.75],[0,0.5],[0,0.25]];outlineConnect=0;gradientColor=none;html=1;whiteSpace=wrap;fontSize=12;fontStyle=0;container=1;pointerEvents=0;collapsible=0;recursiveResize=0;shape=mxgraph.aws4.group;verticalAlign=top;align=left;spacingLeft=30;dashed=0;";
const ICON: &str = "outlineConnect=0;fontColor=#232F3E;gradientColor=none;strokeColor=none;dashed=0;verticalLabelPosition=bottom;verticalAlign=top;align=center;html=1;fontSize=11;fontStyle=0;aspect=fixed;pointerEvents=1;";

/// What a shape is, for the SVG picture's colours (draw.io has its own styles).
#[derive(Clone, Copy, PartialEq)]
enum Look {
    Region,
    Vpc,
    Az,
    Public,
    Private,
    Nat,
    Instance,
    Balancer,
    Database,
}

struct Vertex {
    id: String,
    parent: String,
    label: String,
    style: String,
    look: Look,
    geo: (u32, u32, u32, u32),
}

/// The laid-out picture: shapes with their geometry relative to their parent (draw.io's way),
/// and arrows.
struct Cells {
    vertices: Vec<Vertex>,
    edges: Vec<(String, String, String)>,
    next: usize,
}

impl Cells {
    fn vertex(&mut self, parent: &str, label: &str, style: &str, look: Look, geo: (u32, u32, u32, u32)) -> String {
        self.next += 1;
        let id = format!("n{}", self.next);
        self.vertices.push(Vertex {
            id: id.clone(),
            parent: parent.into(),
            label: label.into(),
            style: style.into(),
            look,
            geo,
        });
        id
    }

    fn edge(&mut self, from: &str, to: &str, label: &str) {
        self.edges.push((from.into(), to.into(), label.into()));
    }

    fn drawio(&self, title: &str, (w, h): (u32, u32)) -> String {
        let mut out = String::new();
        for v in &self.vertices {
            let (x, y, vw, vh) = v.geo;
            out.push_str(&format!(
                "        <mxCell id=\"{}\" value=\"{}\" style=\"{}\" vertex=\"1\" parent=\"{}\">\n          <mxGeometry x=\"{x}\" y=\"{y}\" width=\"{vw}\" height=\"{vh}\" as=\"geometry\" />\n        </mxCell>\n",
                v.id,
                xml(&v.label),
                v.style,
                v.parent
            ));
        }
        for (i, (from, to, label)) in self.edges.iter().enumerate() {
            out.push_str(&format!(
                "        <mxCell id=\"e{}\" value=\"{}\" style=\"endArrow=classic;html=1;rounded=0;strokeColor=#545B64;\" edge=\"1\" parent=\"1\" source=\"{from}\" target=\"{to}\">\n          <mxGeometry relative=\"1\" as=\"geometry\" />\n        </mxCell>\n",
                i + 1,
                xml(label)
            ));
        }
        format!(
            "<mxfile host=\"flow\">\n  <diagram name=\"{}\" id=\"setup\">\n    <mxGraphModel grid=\"1\" gridSize=\"10\" page=\"1\" pageWidth=\"{w}\" pageHeight=\"{h}\">\n      <root>\n        <mxCell id=\"0\" />\n        <mxCell id=\"1\" parent=\"0\" />\n{out}      </root>\n    </mxGraphModel>\n  </diagram>\n</mxfile>\n",
            xml(title)
        )
    }

    /// A shape's box in page coordinates.
    fn absolute(&self, id: &str) -> Option<(u32, u32, u32, u32)> {
        let v = self.vertices.iter().find(|v| v.id == id)?;
        let (x, y, w, h) = v.geo;
        match self.absolute(&v.parent) {
            Some((px, py, _, _)) => Some((px + x, py + y, w, h)),
            None => Some((x, y, w, h)),
        }
    }

    /// The same picture as plain SVG, for the HTML report: boxes for groups, rounded squares
    /// with a label below for resources, straight arrows between centres.
    fn svg(&self, title: &str, (w, h): (u32, u32)) -> String {
        let mut out = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\" role=\"img\"><title>{}</title><defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#545B64\"/></marker></defs>",
            xml(title)
        );
        for v in &self.vertices {
            let Some((x, y, bw, bh)) = self.absolute(&v.id) else { continue };
            let (stroke, fill, dashed, group) = match v.look {
                Look::Region => ("#00A4A6", "none", false, true),
                Look::Vpc => ("#8C4FFF", "none", false, true),
                Look::Az => ("#147EBA", "none", true, true),
                Look::Public => ("#7AA116", "#F2F6E8", false, true),
                Look::Private => ("#00A4A6", "#E6F6F7", false, true),
                Look::Nat | Look::Balancer => ("#8C4FFF", "#8C4FFF", false, false),
                Look::Instance => ("#ED7100", "#ED7100", false, false),
                Look::Database => ("#C925D1", "#C925D1", false, false),
            };
            let dash = if dashed { " stroke-dasharray=\"6 4\"" } else { "" };
            if group {
                out.push_str(&format!(
                    "<g class=\"group\"><rect x=\"{x}\" y=\"{y}\" width=\"{bw}\" height=\"{bh}\" fill=\"{fill}\" stroke=\"{stroke}\"{dash}/><text x=\"{}\" y=\"{}\" fill=\"#232F3E\">{}</text></g>",
                    x + 6,
                    y + 15,
                    xml(&v.label)
                ));
            } else {
                out.push_str(&format!(
                    "<g class=\"resource\"><rect x=\"{x}\" y=\"{y}\" width=\"{bw}\" height=\"{bh}\" rx=\"6\" fill=\"{fill}\" stroke=\"{stroke}\"/><text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#232F3E\">{}</text></g>",
                    x + bw / 2,
                    y + bh + 13,
                    xml(&v.label)
                ));
            }
        }
        for (from, to, label) in &self.edges {
            let (Some(a), Some(b)) = (self.absolute(from), self.absolute(to)) else { continue };
            let c = |(x, y, w, h): (u32, u32, u32, u32)| (x + w / 2, y + h / 2);
            let ((x1, y1), (x2, y2)) = (c(a), c(b));
            out.push_str(&format!(
                "<g class=\"arrow\"><line x1=\"{x1}\" y1=\"{y1}\" x2=\"{x2}\" y2=\"{y2}\" stroke=\"#545B64\" marker-end=\"url(#arrow)\"/><text x=\"{}\" y=\"{}\" fill=\"#545B64\">{}</text></g>",
                (x1 + x2) / 2 + 4,
                (y1 + y2) / 2,
                xml(label)
            ));
        }
        out.push_str("</svg>");
        out
    }
}

/// The setup in draw.io's format: one shape per VPC, AZ, subnet, NAT gateway, instance and load
/// balancer, laid out AZ by AZ; `title` names the diagram ("vpc-0abc as it runs").
pub fn drawio(s: &Setup, title: &str) -> String {
    let (cells, size) = layout(s);
    cells.drawio(title, size)
}

/// The same picture as SVG (the HTML report shows it).
pub fn svg(s: &Setup, title: &str) -> String {
    let (cells, size) = layout(s);
    cells.svg(title, size)
}

fn layout(s: &Setup) -> (Cells, (u32, u32)) {
    let azs = s.azs();
    let (sub_w, sub_h, pad) = (220u32, 150u32, 20u32);
    let rows = azs.iter().map(|az| s.subnets.iter().filter(|n| n.az == *az).count() as u32).max().unwrap_or(1).max(1);
    let az_w = sub_w + 2 * pad;
    // Databases stand in their AZ, below its subnets.
    let db_h = if s.databases.is_empty() { 0 } else { 90 };
    let az_h = rows * (sub_h + pad) + 40 + db_h;
    let lb_h = if s.load_balancers.is_empty() { 0 } else { 110 };
    let vpc_w = azs.len().max(1) as u32 * (az_w + pad) + pad;
    let vpc_h = az_h + 60 + lb_h;
    let mut c = Cells { vertices: Vec::new(), edges: Vec::new(), next: 0 };
    let cloud = c.vertex(
        "1",
        &format!("AWS Cloud: {}", s.region),
        &format!("{GROUP}grIcon=mxgraph.aws4.group_region;strokeColor=#00A4A6;fillColor=none;fontColor=#147EBA;"),
        Look::Region,
        (20, 20, vpc_w + 40, vpc_h + 60),
    );
    let vpc = c.vertex(
        &cloud,
        &format!("VPC {} ({})", s.vpc.id, s.vpc.cidrs.join(", ")),
        &format!("{GROUP}grIcon=mxgraph.aws4.group_vpc2;strokeColor=#8C4FFF;fillColor=none;fontColor=#AAB7B8;"),
        Look::Vpc,
        (20, 40, vpc_w, vpc_h),
    );
    let mut lb_ids = Vec::new();
    for (i, lb) in s.load_balancers.iter().enumerate() {
        let id = c.vertex(
            &vpc,
            &format!("{} ({})", lb.name, lb.azs.join(", ")),
            &format!("{ICON}fillColor=#8C4FFF;shape=mxgraph.aws4.application_load_balancer;"),
            Look::Balancer,
            (pad + i as u32 * 200 + 60, 40, 60, 60),
        );
        lb_ids.push(id);
    }
    let mut subnet_ids: BTreeMap<&str, String> = BTreeMap::new();
    let mut nat_ids: BTreeMap<&str, String> = BTreeMap::new();
    let mut instance_ids = Vec::new();
    for (i, az) in azs.iter().enumerate() {
        let az_id = c.vertex(
            &vpc,
            az,
            "fillColor=none;strokeColor=#147EBA;dashed=1;verticalAlign=top;fontStyle=0;fontColor=#147EBA;whiteSpace=wrap;html=1;container=1;",
            Look::Az,
            (pad + i as u32 * (az_w + pad), 40 + lb_h, az_w, az_h),
        );
        for (row, n) in s.subnets.iter().filter(|n| n.az == *az).enumerate() {
            let style = if n.public {
                format!("{GROUP}grIcon=mxgraph.aws4.group_security_group;grStroke=0;strokeColor=#7AA116;fillColor=#F2F6E8;fontColor=#248814;")
            } else {
                format!("{GROUP}grIcon=mxgraph.aws4.group_security_group;grStroke=0;strokeColor=#00A4A6;fillColor=#E6F6F7;fontColor=#147EBA;")
            };
            let kind = if n.public { "public" } else { "private" };
            let sid = c.vertex(
                &az_id,
                &format!("{kind} subnet {} {} ({} free)", n.id, n.cidr, n.free),
                &style,
                if n.public { Look::Public } else { Look::Private },
                (pad, 30 + row as u32 * (sub_h + pad), sub_w, sub_h),
            );
            let mut slot = 0u32;
            for g in s.nat_gateways.iter().filter(|g| g.subnet.as_deref() == Some(n.id.as_str())) {
                let id = c.vertex(
                    &sid,
                    &format!("NAT gateway {}{}", g.id, if g.regional { " (regional)" } else { "" }),
                    &format!("{ICON}fillColor=#8C4FFF;shape=mxgraph.aws4.nat_gateway;"),
                    Look::Nat,
                    (15 + slot * 70, 40, 48, 48),
                );
                nat_ids.insert(g.id.as_str(), id);
                slot += 1;
            }
            for inst in s.instances.iter().filter(|i| i.subnet == n.id) {
                let id = c.vertex(
                    &sid,
                    &format!(
                        "{} {}{}",
                        inst.id,
                        inst.instance_type,
                        inst.auto_scaling_group.as_ref().map(|g| format!(" (ASG {g})")).unwrap_or_default()
                    ),
                    &format!("{ICON}fillColor=#ED7100;shape=mxgraph.aws4.instance2;"),
                    Look::Instance,
                    (15 + slot * 70, 40, 48, 48),
                );
                instance_ids.push((id, inst.auto_scaling_group.is_some()));
                slot += 1;
            }
            subnet_ids.insert(n.id.as_str(), sid);
        }
        for (k, d) in s.databases.iter().filter(|d| d.az == *az).enumerate() {
            c.vertex(
                &az_id,
                &format!("RDS {} {}{}", d.id, d.engine, if d.multi_az { " (Multi-AZ)" } else { "" }),
                &format!("{ICON}fillColor=#C925D1;shape=mxgraph.aws4.rds_instance;"),
                Look::Database,
                (pad + 15 + k as u32 * 80, 30 + rows * (sub_h + pad), 48, 48),
            );
        }
    }
    // A regional NAT gateway belongs to the VPC, not to a subnet.
    let unplaced: Vec<_> = s.nat_gateways.iter().filter(|g| !nat_ids.contains_key(g.id.as_str())).collect();
    for g in unplaced {
        let id = c.vertex(
            &vpc,
            &format!("NAT gateway {}{}", g.id, if g.regional { " (regional)" } else { "" }),
            &format!("{ICON}fillColor=#8C4FFF;shape=mxgraph.aws4.nat_gateway;"),
            Look::Nat,
            (vpc_w - 90, 40, 48, 48),
        );
        nat_ids.insert(g.id.as_str(), id);
    }
    for n in &s.subnets {
        if let (Some(nat), Some(from)) = (&n.nat, subnet_ids.get(n.id.as_str())) {
            if let Some(to) = nat_ids.get(nat.as_str()) {
                c.edge(&from.clone(), &to.clone(), "0.0.0.0/0");
            }
        }
    }
    // A balancer sends to the Auto Scaling groups' instances when there are some (a target's
    // running instance is not behind the new balancer), else to every instance.
    let grouped = instance_ids.iter().any(|(_, g)| *g);
    for lb in &lb_ids {
        for (i, g) in &instance_ids {
            if *g || !grouped {
                c.edge(lb, i, "");
            }
        }
    }
    (c, (vpc_w + 100, vpc_h + 140))
}

/// The setup as a Mermaid flowchart: the VPC, an AZ subgraph each, subnets with what runs in
/// them, the default routes to NAT gateways.
pub fn mermaid(s: &Setup) -> String {
    let node = |id: &str| id.replace('-', "_");
    let mut out =
        format!("flowchart TB\n  subgraph {}[\"VPC {} ({})\"]\n", node(&s.vpc.id), s.vpc.id, s.vpc.cidrs.join(", "));
    for lb in &s.load_balancers {
        out.push_str(&format!(
            "    {}[[\"load balancer {} ({})\"]]\n",
            node(&format!("lb-{}", lb.name)),
            lb.name,
            lb.azs.join(", ")
        ));
    }
    for az in s.azs() {
        out.push_str(&format!("    subgraph {}[\"{az}\"]\n", node(az)));
        for n in s.subnets.iter().filter(|n| n.az == az) {
            let things: Vec<String> = s
                .nat_gateways
                .iter()
                .filter(|g| g.subnet.as_deref() == Some(n.id.as_str()))
                .map(|g| format!("NAT {}", g.id))
                .chain(s.instances.iter().filter(|i| i.subnet == n.id).map(|i| format!("{} {}", i.id, i.instance_type)))
                .collect();
            out.push_str(&format!(
                "      {}[\"{} subnet {}<br/>{} ({} free){}\"]\n",
                node(&n.id),
                if n.public { "public" } else { "private" },
                n.id,
                n.cidr,
                n.free,
                if things.is_empty() { String::new() } else { format!("<br/>{}", things.join("<br/>")) }
            ));
        }
        for d in s.databases.iter().filter(|d| d.az == az) {
            out.push_str(&format!(
                "      {}[(\"RDS {} {}{}\")]\n",
                node(&format!("db-{}", d.id)),
                d.id,
                d.engine,
                if d.multi_az { " Multi-AZ" } else { "" }
            ));
        }
        out.push_str("    end\n");
    }
    out.push_str("  end\n");
    for n in &s.subnets {
        if let Some(nat) = &n.nat {
            if let Some(home) = s.nat_gateways.iter().find(|g| &g.id == nat).and_then(|g| g.subnet.clone()) {
                out.push_str(&format!("  {} -- \"0.0.0.0/0 via {nat}\" --> {}\n", node(&n.id), node(&home)));
            }
        }
    }
    out
}

/// The setup as Graphviz DOT: clusters for the VPC and each AZ.
pub fn dot(s: &Setup) -> String {
    let q = |t: &str| t.replace('"', "'");
    let mut out = format!(
        "digraph \"{}\" {{\n  compound=true;\n  node [shape=box, style=rounded, fontname=\"sans-serif\"];\n  subgraph \"cluster_vpc\" {{\n    label=\"VPC {} ({})\";\n",
        q(&s.vpc.id),
        q(&s.vpc.id),
        q(&s.vpc.cidrs.join(", "))
    );
    for lb in &s.load_balancers {
        out.push_str(&format!(
            "    \"lb-{}\" [label=\"load balancer {}\", shape=hexagon];\n",
            q(&lb.name),
            q(&lb.name)
        ));
    }
    for (i, az) in s.azs().iter().enumerate() {
        out.push_str(&format!("    subgraph \"cluster_az{i}\" {{\n      label=\"{}\";\n      style=dashed;\n", q(az)));
        for n in s.subnets.iter().filter(|n| n.az == *az) {
            out.push_str(&format!(
                "      \"{}\" [label=\"{} subnet {}\\n{} ({} free)\"];\n",
                q(&n.id),
                if n.public { "public" } else { "private" },
                q(&n.id),
                q(&n.cidr),
                n.free
            ));
            for g in s.nat_gateways.iter().filter(|g| g.subnet.as_deref() == Some(n.id.as_str())) {
                out.push_str(&format!("      \"{}\" [label=\"NAT gateway {}\", shape=ellipse];\n", q(&g.id), q(&g.id)));
            }
            for inst in s.instances.iter().filter(|i| i.subnet == n.id) {
                out.push_str(&format!(
                    "      \"{}\" [label=\"{} {}\"];\n",
                    q(&inst.id),
                    q(&inst.id),
                    q(&inst.instance_type)
                ));
            }
        }
        for d in s.databases.iter().filter(|d| d.az == *az) {
            out.push_str(&format!(
                "      \"db-{}\" [label=\"RDS {} {}\", shape=cylinder];\n",
                q(&d.id),
                q(&d.id),
                q(&d.engine)
            ));
        }
        out.push_str("    }\n");
    }
    out.push_str("  }\n");
    for n in &s.subnets {
        if let Some(nat) = &n.nat {
            out.push_str(&format!("  \"{}\" -> \"{}\" [label=\"0.0.0.0/0\"];\n", q(&n.id), q(nat)));
        }
    }
    for lb in &s.load_balancers {
        for i in &s.instances {
            out.push_str(&format!("  \"lb-{}\" -> \"{}\";\n", q(&lb.name), q(&i.id)));
        }
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> Setup {
        crate::domain::assess::scenario()
    }

    #[test]
    fn each_resource_is_one_shape_and_each_route_one_arrow() {
        let x = drawio(&setup(), "vpc-1 as it runs");
        // region, VPC, 2 AZs, 3 subnets, 1 NAT gateway, 1 instance.
        assert_eq!(x.matches("vertex=\"1\"").count(), 9, "{x}");
        assert_eq!(x.matches("edge=\"1\"").count(), 2, "{x}");
        assert!(x.contains("shape=mxgraph.aws4.nat_gateway") && x.contains("shape=mxgraph.aws4.instance2"), "{x}");
        let m = mermaid(&setup());
        assert!(m.contains("subnet_b -- \"0.0.0.0/0 via nat-1\" --> subnet_pa"), "{m}");
        let d = dot(&setup());
        assert!(d.contains("\"subnet-b\" -> \"nat-1\" [label=\"0.0.0.0/0\"];"), "{d}");
    }

    #[test]
    fn a_database_is_one_shape_in_its_az() {
        let mut s = setup();
        s.databases = vec![crate::domain::assess::Database {
            id: "orders".into(),
            engine: "postgres".into(),
            az: "eu-west-1a".into(),
            ..Default::default()
        }];
        let x = drawio(&s, "t");
        assert_eq!(x.matches("vertex=\"1\"").count(), 10, "{x}");
        assert!(x.contains("value=\"RDS orders postgres\"") && x.contains("shape=mxgraph.aws4.rds_instance"), "{x}");
        assert!(mermaid(&s).contains("db_orders[(\"RDS orders postgres\")]"));
        assert!(dot(&s).contains("\"db-orders\" [label=\"RDS orders postgres\", shape=cylinder];"));
        assert_eq!(svg(&s, "t").matches("class=\"resource\"").count(), 3);
    }

    #[test]
    fn labels_are_escaped() {
        let mut s = setup();
        s.vpc.id = "vpc-<&\">".into();
        let x = drawio(&s, "t");
        assert!(x.contains("VPC vpc-&lt;&amp;&quot;&gt;"), "{x}");
    }
}
