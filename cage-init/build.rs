//! The binary has its own `_start` and makes raw system calls: link it
//! static, without the C runtime or libc, so it needs no file inside the
//! cage (the seed's root is an empty tmpfs) and maps almost nothing.
fn main() {
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-no-pie",
        "-Wl,--build-id=none",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
}
