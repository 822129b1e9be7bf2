//! Turns openapi.yaml into the compact JSON that `GET /openapi.json` serves,
//! so the worker ships no YAML parser and an invalid spec fails the build.

use std::{env, fs, path::Path};

fn main() {
    println!("cargo:rerun-if-changed=openapi.yaml");
    let yaml = fs::read_to_string("openapi.yaml").expect("openapi.yaml is readable");
    let spec: serde_json::Value =
        serde_norway::from_str(&yaml).unwrap_or_else(|e| panic!("openapi.yaml: {e}"));
    let out = Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("openapi.json");
    fs::write(
        out,
        serde_json::to_string(&spec).expect("JSON values serialise"),
    )
    .expect("OUT_DIR is writable");
}
