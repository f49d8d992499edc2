#!/bin/bash
# Builds a headless OpenXR runtime for the XR tests and benchmarks: Monado 25.0.0 (in-process target) with the
# simulated HMD/controllers, the REMOTE driver (tests press buttons over TCP) and the null compositor, plus
# lavapipe (CPU Vulkan); OpenGL clients through EGL (XR_MNDX_egl_enable, Mesa's llvmpipe, no display needed). Everything lands in one folder (default .cache/monado, gitignored); nothing is installed
# system-wide. Idempotent: exits at once when the runtime is already built.
#
# Why this way: Debian 12 ships no Monado and trixie's binaries need glibc 2.38, so we build trixie's *source*
# tarball against bookworm's -dev packages, which we only extract (dpkg -x).
# Needs (apt): build-essential cmake ninja-build pkg-config python3 xz-utils ca-certificates, libegl-dev libgl-dev
# (headers for the GL client compositor) and libegl-mesa0 libgl1-mesa-dri (llvmpipe at run time), and a deb mirror
# in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list (else set MIRROR to a Debian mirror's URL).
# Usage: bash scripts/build-monado.sh [DIR]; then `. DIR/env.sh` (the tests do that themselves).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
P=${1:-${QILU_MONADO_DIR:-$ROOT/.cache/monado}}
mkdir -p "$P"
P=$(cd "$P" && pwd)
# bump when the build's options change, so an older cache is rebuilt instead of silently lacking a feature
FEATURES="monado-25.0.0 null-compositor null-fps-option null-blend-modes-option simulated remote vulkan opengl-egl service"
if [[ -f $P/env.sh && -f $P/build/openxr_monado-dev.json && -f $P/build/src/xrt/targets/openxr/libopenxr_monado.so \
      && -x $P/build-service/src/xrt/targets/service/monado-service \
      && "$(cat "$P/features" 2>/dev/null)" == "$FEATURES" ]]; then
  echo "monado already built in $P (. $P/env.sh)"; exit 0
fi
for tool in cmake ninja cc c++ pkg-config python3 xz apt-get dpkg; do
  command -v "$tool" >/dev/null || {
    echo "build-monado: missing '$tool' (apt-get install -y build-essential cmake ninja-build pkg-config python3 xz-utils)" >&2
    exit 2; }
done
for h in /usr/include/EGL/egl.h /usr/include/GL/gl.h; do
  [[ -f $h ]] || { echo "build-monado: missing $h (apt-get install -y libegl-dev libgl-dev)" >&2; exit 2; }
done
cd "$P"
mkdir -p debs bw src apt/lists/partial
# 1. bookworm binaries/headers, extracted only
# apt's download sandbox user (_apt) cannot write into this folder, and on a machine whose /dev/null had lost
# its world-writable mode its signature check failed ("gpgv ... not installed"); the files are only extracted
# into this folder, so fetch them as the invoking user
SANDBOX="-o APT::Sandbox::User=$(id -un)"
# shellcheck disable=SC2086
(cd debs && apt-get $SANDBOX download -q spirv-tools glslang-tools libeigen3-dev libudev-dev libvulkan1 libvulkan-dev mesa-vulkan-drivers)
for f in debs/*.deb; do dpkg -x "$f" bw; done
ln -sf /lib/x86_64-linux-gnu/libudev.so.1 bw/usr/lib/x86_64-linux-gnu/libudev.so
cat > lvp_icd.json <<J
{"file_format_version": "1.0.0", "ICD": {"api_version": "1.1.230", "library_path": "$P/bw/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so"}}
J
# 2. Monado source: trixie's orig tarball via apt-get source, from the mirror this machine already uses
MIRROR=${MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
MIRROR=${MIRROR:-$(awk '$1 == "deb" {print ($2 ~ /^\[/ ? $3 : $2); exit}' /etc/apt/sources.list 2>/dev/null || true)}
[[ -n $MIRROR ]] || { echo "build-monado.sh: no Debian mirror in the apt sources; set MIRROR=<mirror URL>" >&2; exit 1; }
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR trixie main" > apt/src.list
o="$SANDBOX -o Dir::Etc::SourceList=$P/apt/src.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=$P/apt/lists"
# shellcheck disable=SC2086
apt-get $o update -qq
TARBALL=src/monado_25.0.0+dfsg.orig.tar.xz
# shellcheck disable=SC2086
[[ -f $TARBALL ]] || (cd src && apt-get $o source --download-only --tar-only monado=25.0.0+dfsg-2)
echo "ddfa1899078173bea3db98034dc8b990df727a169f490896570ff6e3bda72113  $TARBALL" | sha256sum -c -
rm -rf src/monado-v25.0.0 && tar -C src -xf "$TARBALL"
S=$P/src/monado-v25.0.0
# upstream bug: the in-process target links comp_main even with the main compositor disabled
sed -i '/^\t\t\tcomp_main$/d' "$S"/src/xrt/targets/openxr/CMakeLists.txt
# the null compositor paces frames at a hard-coded 20 Hz; make the rate an option (XRT_COMPOSITOR_NULL_FPS, upstream's
# 20 when unset) so the bench measures frame drops at a headset's 90 Hz. Fails loudly if the source moved.
NULLC=$S/src/xrt/compositor/null/null_compositor.c
grep -q 'frame_interval_ns = U_TIME_1S_IN_NS / 20; // 20 FPS' "$NULLC" \
  || { echo "build-monado: null compositor's frame interval not found; update the patch" >&2; exit 1; }
sed -i -e '/^DEBUG_GET_ONCE_LOG_OPTION(log, "XRT_COMPOSITOR_LOG"/a DEBUG_GET_ONCE_NUM_OPTION(null_fps, "XRT_COMPOSITOR_NULL_FPS", 20)' \
  -e 's|frame_interval_ns = U_TIME_1S_IN_NS / 20; // 20 FPS|frame_interval_ns = U_TIME_1S_IN_NS / (uint64_t)(debug_get_num_option_null_fps() > 0 ? debug_get_num_option_null_fps() : 20);|' \
  "$NULLC"
# the null compositor offers whatever blend modes the head device lists (the simulated and remote heads: OPAQUE only);
# XRT_COMPOSITOR_NULL_BLEND_MODES (e.g. "alpha_blend,opaque" or "additive"; unset: the device's own list) replaces
# that list, so the tests run clients against what an AR headset offers. The device's list is changed, not only
# the compositor's copy of it, because xrEndFrame checks the frame's blend mode against the device's list.
grep -qx $'\t// Copy the list directly.' "$NULLC" \
  || { echo "build-monado: null compositor's blend mode copy not found; update the patch" >&2; exit 1; }
cat > null_blend_modes.c <<'C'
#include <string.h>
DEBUG_GET_ONCE_OPTION(null_blend_modes, "XRT_COMPOSITOR_NULL_BLEND_MODES", NULL)

/* qilu-hub patch (scripts/build-monado.sh): the head's blend modes from XRT_COMPOSITOR_NULL_BLEND_MODES. */
static bool
null_override_blend_modes(struct xrt_device *xdev)
{
	const char *s = debug_get_option_null_blend_modes();
	if (s == NULL || *s == '\0') {
		return true;
	}
	enum xrt_blend_mode modes[XRT_MAX_DEVICE_BLEND_MODES];
	size_t count = 0;
	while (*s != '\0') {
		while (*s == ' ') {
			s++;
		}
		size_t n = strcspn(s, ",");
		enum xrt_blend_mode m;
		if (n == 6 && strncmp(s, "opaque", n) == 0) {
			m = XRT_BLEND_MODE_OPAQUE;
		} else if (n == 8 && strncmp(s, "additive", n) == 0) {
			m = XRT_BLEND_MODE_ADDITIVE;
		} else if (n == 11 && strncmp(s, "alpha_blend", n) == 0) {
			m = XRT_BLEND_MODE_ALPHA_BLEND;
		} else {
			U_LOG_E("XRT_COMPOSITOR_NULL_BLEND_MODES: unknown blend mode '%.*s' (use opaque, additive, alpha_blend)",
			        (int)n, s);
			return false;
		}
		for (size_t i = 0; i < count; i++) {
			if (modes[i] == m) {
				U_LOG_E("XRT_COMPOSITOR_NULL_BLEND_MODES: '%.*s' given twice", (int)n, s);
				return false;
			}
		}
		modes[count++] = m;  // at most one of each of the three modes, so it fits
		s += n;
		if (*s == ',') {
			s++;
		}
	}
	if (count == 0) {
		U_LOG_E("XRT_COMPOSITOR_NULL_BLEND_MODES: no blend mode given");
		return false;
	}
	for (size_t i = 0; i < count; i++) {
		xdev->hmd->blend_modes[i] = modes[i];
	}
	xdev->hmd->blend_mode_count = count;
	return true;
}
C
sed -i -e "/^DEBUG_GET_ONCE_NUM_OPTION(null_fps, /r $P/null_blend_modes.c" \
  -e $'s|^\t// Copy the list directly.$|\tif (!null_override_blend_modes(xdev)) {\\n\t\treturn false;\\n\t}\\n\t// Copy the list directly.|' \
  "$NULLC"
grep -q '^null_override_blend_modes(struct xrt_device \*xdev)$' "$NULLC" && grep -q 'if (!null_override_blend_modes(xdev))' "$NULLC" \
  || { echo "build-monado: blend mode patch did not apply" >&2; exit 1; }
# 3. configure + build: simulated + remote (remote links aux_vive, so AUX_VIVE stays on), null compositor only;
#    OPENGL + EGL on (the client compositor imports the Vulkan swapchain images into GL through
#    GL_EXT_memory_object_fd, which llvmpipe offers), GLX/X11 off (no display on CI)
OFF=""
for d in ARDUINO DAYDREAM DEPTHAI EUROC HANDTRACKING HDK HYDRA ILLIXR NS OHMD OPENGLOVES PSMV PSSENSE PSVR QWERTY \
         REALSENSE RIFT_S ROKID SIMULAVR STEAMVR_LIGHTHOUSE SURVIVE TWRAP ULV2 ULV5 VF VIVE WMR XREAL_AIR; do
  OFF="$OFF -DXRT_BUILD_DRIVER_$d=OFF"
done
for h in OPENGL_GLX OPENGLES SDL2 XLIB XCB XRANDR WAYLAND OPENCV DBUS GST LIBUVC LIBUSB HIDAPI JPEG SYSTEMD; do
  OFF="$OFF -DXRT_HAVE_$h=OFF"
done
export PATH=$P/bw/usr/bin:$PATH
configure() {  # $1: build dir, $2: ON for the out-of-process variant (monado-service + IPC client runtime)
  # shellcheck disable=SC2086
  cmake -S "$S" -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DEigen3_DIR="$P"/bw/usr/share/eigen3/cmake \
    -DVulkan_INCLUDE_DIR="$P"/bw/usr/include -DVulkan_LIBRARY="$P"/bw/usr/lib/x86_64-linux-gnu/libvulkan.so \
    -DUDEV_INCLUDE_DIR="$P"/bw/usr/include -DUDEV_LIBRARY="$P"/bw/usr/lib/x86_64-linux-gnu/libudev.so \
    -DXRT_FEATURE_SERVICE="$2" -DXRT_MODULE_COMPOSITOR_MAIN=OFF -DXRT_MODULE_MONADO_GUI=OFF -DXRT_MODULE_MONADO_CLI=OFF \
    -DXRT_FEATURE_STEAMVR_PLUGIN=OFF -DXRT_BUILD_SAMPLES=OFF -DBUILD_TESTING=OFF \
    -DXRT_HAVE_OPENGL=ON -DXRT_HAVE_EGL=ON $OFF
}
configure build OFF > cmake.log
ninja -C build -j"$(nproc)" openxr_monado > build.log
# 3b. the same runtime as a service (monado-service) plus its IPC client runtime, in build-service: the tests
#     kill the service mid-session to see the bridge handle a real runtime loss (XR_ERROR_INSTANCE_LOST).
#     The service needs stdin to be a pipe or a terminal (it polls stdin), and puts its socket in
#     $XDG_RUNTIME_DIR/monado_comp_ipc.
configure build-service ON > cmake-service.log
ninja -C build-service -j"$(nproc)" openxr_monado monado-service > build-service.log
# 4. environment for the tests / bench / bridge (pyopenxr finds the runtime through XR_RUNTIME_JSON)
cat > env.sh <<E
export XR_RUNTIME_JSON=$P/build/openxr_monado-dev.json
export VK_ICD_FILENAMES=$P/lvp_icd.json
export LD_LIBRARY_PATH=$P/bw/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
export XRT_COMPOSITOR_NULL=1 XRT_COMPOSITOR_NULL_FPS=\${XRT_COMPOSITOR_NULL_FPS:-90} SIMULATED_ENABLE=1 SIMULATED_LEFT=simple SIMULATED_RIGHT=simple
export OXR_NO_PRINTING=1 XRT_LOG=warning
E
# the GL client imports lavapipe's images, so GL must be Mesa too (llvmpipe), even where another EGL vendor exists
MESA_EGL=/usr/share/glvnd/egl_vendor.d/50_mesa.json
[[ -f $MESA_EGL ]] && echo "export __EGL_VENDOR_LIBRARY_FILENAMES=$MESA_EGL" >> env.sh
cat > env-service.sh <<E
. $P/env.sh
export XR_RUNTIME_JSON=$P/build-service/openxr_monado-dev.json
export MONADO_SERVICE=$P/build-service/src/xrt/targets/service/monado-service
E
echo "$FEATURES" > features
echo "monado built: . $P/env.sh"
