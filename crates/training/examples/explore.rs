use simulator::SyntheticPatient;
fn main() {
    for seed in 1..40u64 {
        let p = SyntheticPatient::generate(seed);
        let veins: Vec<String> = p.tree.branches.iter().filter(|b| b.label != venogram::VeinLabel::Branch && b.takeoff.is_some())
            .map(|b| format!("{}(r{:.1},{:.0}mm,{:.0}deg)", b.label.abbreviation(), b.radius_mm[1], b.length_mm(), p.lv.coord_of(&b.centerline_in_patient[b.centerline_in_patient.len()/2]).angle_rad.to_degrees())).collect();
        println!("{seed}: scars {} latest {:.0}deg d{:.2} | {}", p.physiology.scars.len(), p.physiology.activation.latest.angle_rad.to_degrees(), p.physiology.activation.latest.depth, veins.join(" "));
    }
}
