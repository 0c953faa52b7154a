//! The few Linux-PAM declarations a session module needs, written by hand
//! from `<security/_pam_types.h>` and `<security/pam_modules.h>` (libpam0g
//! 1.5), and the one place that turns PAM items into Rust strings.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::marker::{PhantomData, PhantomPinned};

/// `pam_handle_t`: opaque, only ever behind a pointer PAM gave us.
#[repr(C)]
pub struct PamHandle {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

// Return values (`_pam_types.h`).
pub const PAM_SUCCESS: c_int = 0;
pub const PAM_SESSION_ERR: c_int = 14;
pub const PAM_IGNORE: c_int = 25;

// Item types for `pam_get_item`.
pub const PAM_SERVICE: c_int = 1;
pub const PAM_USER: c_int = 2;

#[link(name = "pam")]
extern "C" {
    /// `int pam_get_item(const pam_handle_t *pamh, int item_type,
    /// const void **item);`
    fn pam_get_item(pamh: *const PamHandle, item_type: c_int, item: *mut *const c_void) -> c_int;
    /// `int pam_set_data(pam_handle_t *pamh, const char *module_data_name,
    /// void *data, void (*cleanup)(pam_handle_t *, void *, int));`
    fn pam_set_data(
        pamh: *mut PamHandle,
        name: *const c_char,
        data: *mut c_void,
        cleanup: Option<unsafe extern "C" fn(*mut PamHandle, *mut c_void, c_int)>,
    ) -> c_int;
    /// `int pam_get_data(const pam_handle_t *pamh, const char
    /// *module_data_name, const void **data);`
    fn pam_get_data(pamh: *const PamHandle, name: *const c_char, data: *mut *const c_void)
        -> c_int;
}

/// The module data name that marks a handle whose session entered a cage.
const ENTERED: &CStr = c"pam_cage.entered";
/// Its value: any non-NULL pointer that outlives the handle.
static ENTERED_VALUE: u8 = 1;

/// True when an earlier pam_cage line of this PAM handle entered the cage
/// (a stack that reaches the module twice, e.g. `runuser-l` including
/// `runuser`, each with the line last).
///
/// # Safety
/// `pamh` is the handle PAM passed to the current `pam_sm_*` call.
pub unsafe fn entered(pamh: *const PamHandle) -> bool {
    let mut data: *const c_void = std::ptr::null();
    // SAFETY: live handle (contract), a NUL-terminated name and a valid out
    // pointer; PAM keeps ownership of the data.
    let rc = unsafe { pam_get_data(pamh, ENTERED.as_ptr(), &mut data) };
    rc == PAM_SUCCESS && !data.is_null()
}

/// Marks the handle as entered (see [`entered`]).
///
/// # Safety
/// `pamh` is the handle PAM passed to the current `pam_sm_*` call.
pub unsafe fn mark_entered(pamh: *mut PamHandle) -> bool {
    let value = std::ptr::addr_of!(ENTERED_VALUE)
        .cast_mut()
        .cast::<c_void>();
    // SAFETY: live handle (contract); PAM copies the name and stores the
    // pointer, which is a static PAM never writes through (no cleanup).
    unsafe { pam_set_data(pamh, ENTERED.as_ptr(), value, None) == PAM_SUCCESS }
}

/// A string item (`PAM_SERVICE`, `PAM_USER`): `Ok(None)` when unset, the
/// PAM error code when `pam_get_item` fails. Non-UTF-8 bytes are replaced.
///
/// # Safety
/// `pamh` is the handle PAM passed to the current `pam_sm_*` call and
/// `item_type` is an item whose value is a NUL-terminated string.
pub unsafe fn string_item(
    pamh: *const PamHandle,
    item_type: c_int,
) -> Result<Option<String>, c_int> {
    let mut item: *const c_void = std::ptr::null();
    // SAFETY: pamh is the live handle of this call (contract) and item is a
    // valid out pointer; PAM keeps ownership of the returned value.
    let rc = unsafe { pam_get_item(pamh, item_type, &mut item) };
    if rc != PAM_SUCCESS {
        return Err(rc);
    }
    if item.is_null() {
        return Ok(None);
    }
    // SAFETY: for string item types PAM stores a NUL-terminated string that
    // stays valid until the item is changed; it is copied at once.
    let s = unsafe { CStr::from_ptr(item.cast::<c_char>()) };
    Ok(Some(s.to_string_lossy().into_owned()))
}

/// The module arguments `argv[0..argc]` as strings (lossy); NULL entries
/// are skipped.
///
/// # Safety
/// `argv` is NULL (only when `argc` is 0) or points to `argc` pointers,
/// each NULL or a NUL-terminated string, as PAM passes them.
pub unsafe fn args(argc: c_int, argv: *const *const c_char) -> Vec<String> {
    let n = usize::try_from(argc).unwrap_or(0);
    if argv.is_null() || n == 0 {
        return Vec::new();
    }
    // SAFETY: argv points to argc pointers (contract).
    let ptrs = unsafe { std::slice::from_raw_parts(argv, n) };
    ptrs.iter()
        .filter(|p| !p.is_null())
        // SAFETY: each non-NULL entry is a NUL-terminated string (contract).
        .map(|&p| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
        .collect()
}
