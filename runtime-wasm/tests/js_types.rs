//! The JS package's hand-written declarations (`js/index.d.ts`, `js/engine.d.ts`) checked against
//! the code by `js/test/types.test.mjs`: `tsc --noEmit` over them and `js/test/types/usage.ts` (the
//! API as the package README documents it), and the names each declares against what its module
//! exports. Needs Node, `npm ci --prefix runtime-wasm/js` (TypeScript) and the package built by
//! `runtime-wasm/build.sh` (scripts/test.sh provides all three); a missing piece fails with the
//! command that provides it.

use std::path::Path;
use std::process::Command;

#[test]
fn typescript_declarations_match_the_package() {
    let package = Path::new(env!("CARGO_MANIFEST_DIR")).join("js");
    assert!(
        package.join("node_modules/typescript/package.json").is_file(),
        "TypeScript is missing: npm ci --prefix runtime-wasm/js"
    );
    assert!(package.join("dist/spamlens_wasm.js").is_file(), "the JS package is not built: runtime-wasm/build.sh");
    let out = Command::new("node")
        .args(["--test", "--test-reporter=spec", "test/types.test.mjs"])
        .current_dir(&package)
        .output()
        .unwrap_or_else(|e| panic!("cannot run node ({e}): apt-get install nodejs"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "node --test test/types.test.mjs failed\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
