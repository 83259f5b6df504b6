//! The few libpam calls the client needs (pam_appl.h), and the conversation callback that answers
//! every prompt with the password. All of the client's `unsafe` is here.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::ptr;

const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;
const PAM_SUCCESS: c_int = 0;
const PAM_BUF_ERR: c_int = 5;
const PAM_CONV_ERR: c_int = 19;
const PAM_RHOST: c_int = 4;

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

type ConvFn = unsafe extern "C" fn(
    c_int,
    *mut *const PamMessage,
    *mut *mut PamResponse,
    *mut c_void,
) -> c_int;

#[repr(C)]
struct PamConv {
    conv: ConvFn,
    appdata_ptr: *mut c_void,
}

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_start(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        pamh: *mut *mut c_void,
    ) -> c_int;
    fn pam_set_item(pamh: *mut c_void, item: c_int, value: *const c_void) -> c_int;
    fn pam_authenticate(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_acct_mgmt(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_end(pamh: *mut c_void, status: c_int) -> c_int;
    fn pam_strerror(pamh: *mut c_void, errnum: c_int) -> *const c_char;
}

/// Answers each prompt with a malloc'ed copy of the password (libpam frees the answers).
unsafe extern "C" fn answer_with_password(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    if num_msg <= 0 || msg.is_null() || resp.is_null() {
        return PAM_CONV_ERR;
    }
    let n = num_msg as usize;
    // SAFETY: calloc of n zeroed responses; libpam takes ownership and frees it with free().
    let replies =
        unsafe { libc::calloc(n, std::mem::size_of::<PamResponse>()) } as *mut PamResponse;
    if replies.is_null() {
        return PAM_BUF_ERR;
    }
    // SAFETY: appdata is the CString the caller of `Session::start` keeps alive for the session.
    let password = unsafe { &*(appdata as *const CString) };
    for i in 0..n {
        // SAFETY: libpam passes `num_msg` valid message pointers (Linux-PAM layout: an array of
        // pointers).
        let style = unsafe { (**msg.add(i)).msg_style };
        if style == PAM_PROMPT_ECHO_OFF || style == PAM_PROMPT_ECHO_ON {
            // SAFETY: strdup copies the NUL-terminated password into malloc'ed memory; `replies`
            // has room for n entries.
            unsafe { (*replies.add(i)).resp = libc::strdup(password.as_ptr()) };
        }
    }
    // SAFETY: resp is a valid out-pointer from libpam.
    unsafe { *resp = replies };
    PAM_SUCCESS
}

/// One PAM transaction, ended when dropped.
pub struct Session {
    pamh: *mut c_void,
    last: c_int,
    // Kept alive (and at a stable address) for the conversation callback.
    _password: Box<CString>,
    _conv: Box<PamConv>,
}

impl Session {
    pub fn start(service: &str, user: &CStr, password: CString) -> Result<Session, String> {
        let service = CString::new(service).map_err(|e| e.to_string())?;
        let password = Box::new(password);
        let conv = Box::new(PamConv {
            conv: answer_with_password,
            appdata_ptr: &*password as *const CString as *mut c_void,
        });
        let mut pamh = ptr::null_mut();
        // SAFETY: all pointers are valid NUL-terminated strings or live boxes; pamh is an
        // out-pointer.
        let rc = unsafe { pam_start(service.as_ptr(), user.as_ptr(), &*conv, &mut pamh) };
        if rc != PAM_SUCCESS || pamh.is_null() {
            return Err(format!("pam_start failed with {rc}"));
        }
        Ok(Session {
            pamh,
            last: PAM_SUCCESS,
            _password: password,
            _conv: conv,
        })
    }

    pub fn set_rhost(&mut self, rhost: &CStr) -> c_int {
        // SAFETY: pamh is live; libpam copies the string.
        unsafe { pam_set_item(self.pamh, PAM_RHOST, rhost.as_ptr() as *const c_void) }
    }

    pub fn authenticate(&mut self) -> c_int {
        // SAFETY: pamh is live.
        self.last = unsafe { pam_authenticate(self.pamh, 0) };
        self.last
    }

    pub fn acct_mgmt(&mut self) -> c_int {
        // SAFETY: pamh is live.
        self.last = unsafe { pam_acct_mgmt(self.pamh, 0) };
        self.last
    }

    pub fn strerror(&self, code: c_int) -> String {
        // SAFETY: pam_strerror returns a static string for any code.
        let s = unsafe { pam_strerror(self.pamh, code) };
        if s.is_null() {
            return String::new();
        }
        // SAFETY: non-null, NUL-terminated static string.
        unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: pamh is live and ended exactly once.
        unsafe { pam_end(self.pamh, self.last) };
    }
}
