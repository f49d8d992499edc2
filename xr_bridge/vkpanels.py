"""Vulkan side of the panels: one small swapchain per panel, filled from a persistently mapped staging
buffer with vkCmdCopyBufferToImage (no render pass: the panel is already an image). Pattern from the
project recipe (docs/xr.md): UNDEFINED -> TRANSFER_DST -> COLOR_ATTACHMENT_OPTIMAL before release. A change
copies only its rectangle (plus what the acquired image missed while the others were written, see
swapchains.ImageDamage), from COLOR_ATTACHMENT_OPTIMAL so that the rest of the image is kept."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import vulkan as vk
import xr

from .swapchains import ImageDamage, Rect, acquire_image, create_panel_swapchain

SRGB_FORMATS = (43, 37)  # VK_FORMAT_R8G8B8A8_SRGB, VK_FORMAT_R8G8B8A8_UNORM (Pillow gives sRGB-encoded RGBA)


def as_int(handle: Any) -> int:
    return int(vk.ffi.cast("uintptr_t", handle))


class VkContext:
    """VkInstance/VkDevice created the way the OpenXR runtime asks (XR_KHR_vulkan_enable)."""

    def __init__(self, instance: xr.Instance, system_id: Any, app_name: str) -> None:
        xr.get_vulkan_graphics_requirements_khr(instance, system_id)
        iext = [e for e in xr.get_vulkan_instance_extensions_khr(instance, system_id).split(" ") if e]
        dext = [e for e in xr.get_vulkan_device_extensions_khr(instance, system_id).split(" ") if e]
        self.instance = vk.vkCreateInstance(
            vk.VkInstanceCreateInfo(
                pApplicationInfo=vk.VkApplicationInfo(
                    pApplicationName=app_name, apiVersion=vk.VK_MAKE_VERSION(1, 1, 0)
                ),
                enabledExtensionCount=len(iext),
                ppEnabledExtensionNames=iext,
            ),
            None,
        )
        self.xr_instance = ctypes.cast(ctypes.c_void_p(as_int(self.instance)), xr.platform.linux.VkInstance)
        xr_phys = xr.get_vulkan_graphics_device_khr(instance, system_id, self.xr_instance)
        want = ctypes.cast(xr_phys, ctypes.c_void_p).value
        self.phys = next(p for p in vk.vkEnumeratePhysicalDevices(self.instance) if as_int(p) == want)
        self.xr_phys = xr_phys
        have = {e.extensionName for e in vk.vkEnumerateDeviceExtensionProperties(self.phys, None)}
        dext = [e for e in dext if e in have]  # runtimes list some optional ones lavapipe lacks
        self.queue_family = next(
            i
            for i, q in enumerate(vk.vkGetPhysicalDeviceQueueFamilyProperties(self.phys))
            if q.queueFlags & vk.VK_QUEUE_GRAPHICS_BIT
        )
        self.device = vk.vkCreateDevice(
            self.phys,
            vk.VkDeviceCreateInfo(
                queueCreateInfoCount=1,
                pQueueCreateInfos=[
                    vk.VkDeviceQueueCreateInfo(queueFamilyIndex=self.queue_family, queueCount=1, pQueuePriorities=[1.0])
                ],
                enabledExtensionCount=len(dext),
                ppEnabledExtensionNames=dext,
            ),
            None,
        )
        self.queue = vk.vkGetDeviceQueue(self.device, self.queue_family, 0)  # the queue the session uses too
        self.pool = vk.vkCreateCommandPool(
            self.device,
            vk.VkCommandPoolCreateInfo(
                flags=vk.VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT, queueFamilyIndex=self.queue_family
            ),
            None,
        )
        self.fence = vk.vkCreateFence(self.device, vk.VkFenceCreateInfo(), None)
        self._in_flight = False  # a submission signals self.fence when done
        self.mem_props = vk.vkGetPhysicalDeviceMemoryProperties(self.phys)

    formats = SRGB_FORMATS
    renderer = "vulkan"

    def new_swapchain(self, session: xr.Session, width: int, height: int, fmt: int) -> PanelSwapchain:
        return PanelSwapchain(self, session, width, height, fmt)

    def wait_idle(self) -> None:
        vk.vkDeviceWaitIdle(self.device)

    def binding(self) -> xr.GraphicsBindingVulkanKHR:
        return xr.GraphicsBindingVulkanKHR(
            instance=self.xr_instance,
            physical_device=self.xr_phys,
            device=ctypes.cast(ctypes.c_void_p(as_int(self.device)), xr.platform.linux.VkDevice),
            queue_family_index=self.queue_family,
            queue_index=0,
        )

    def host_buffer(self, size: int, usage: int) -> tuple[Any, Any, Any]:
        buf = vk.vkCreateBuffer(
            self.device,
            vk.VkBufferCreateInfo(size=size, usage=usage, sharingMode=vk.VK_SHARING_MODE_EXCLUSIVE),
            None,
        )
        req = vk.vkGetBufferMemoryRequirements(self.device, buf)
        want = vk.VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | vk.VK_MEMORY_PROPERTY_HOST_COHERENT_BIT
        mp = self.mem_props
        mt = next(
            i
            for i in range(mp.memoryTypeCount)
            if req.memoryTypeBits & (1 << i) and (mp.memoryTypes[i].propertyFlags & want) == want
        )
        mem = vk.vkAllocateMemory(
            self.device, vk.VkMemoryAllocateInfo(allocationSize=req.size, memoryTypeIndex=mt), None
        )
        vk.vkBindBufferMemory(self.device, buf, mem, 0)
        mapped = vk.vkMapMemory(self.device, mem, 0, size, 0)
        return buf, mem, mapped

    def submit(self, cbs: list[Any]) -> None:
        """Queue the frame's copies and return without waiting for them. The swapchain images may be released at
        once: they are released to the runtime on this same queue, which orders the runtime's use after the copies
        (XR_KHR_vulkan_enable: a released image is owned by the binding's queue). What must wait is reuse of what
        the copies read, the staging buffers and command buffers: ``settle`` before touching them again. With a
        CPU driver (lavapipe) the copy then runs beside the rest of the frame instead of inside it."""
        self.settle()  # one fence, one submission in flight at a time
        vk.vkQueueSubmit(self.queue, 1, [vk.VkSubmitInfo(commandBufferCount=len(cbs), pCommandBuffers=cbs)], self.fence)
        self._in_flight = True

    def settle(self) -> None:
        """Wait until the last submission has finished (normally long done: it was queued a frame ago)."""
        if self._in_flight:
            vk.vkWaitForFences(self.device, 1, [self.fence], vk.VK_TRUE, 5_000_000_000)
            vk.vkResetFences(self.device, 1, [self.fence])
            self._in_flight = False

    def submit_and_wait(self, cbs: list[Any]) -> None:
        self.submit(cbs)
        self.settle()

    def destroy(self) -> None:
        vk.vkDeviceWaitIdle(self.device)
        vk.vkDestroyFence(self.device, self.fence, None)
        vk.vkDestroyCommandPool(self.device, self.pool, None)
        vk.vkDestroyDevice(self.device, None)
        vk.vkDestroyInstance(self.instance, None)


def _range() -> Any:
    return vk.VkImageSubresourceRange(
        aspectMask=vk.VK_IMAGE_ASPECT_COLOR_BIT, baseMipLevel=0, levelCount=1, baseArrayLayer=0, layerCount=1
    )


_BEGIN = vk.VkCommandBufferBeginInfo()


def _barrier(
    cb: Any, img: Any, old: int, new: int, src_access: int, dst_access: int, src_stage: int, dst_stage: int
) -> None:
    vk.vkCmdPipelineBarrier(cb, *_barrier_args(img, old, new, src_access, dst_access, src_stage, dst_stage))


def _barrier_args(
    img: Any, old: int, new: int, src_access: int, dst_access: int, src_stage: int, dst_stage: int
) -> tuple[Any, ...]:
    """vkCmdPipelineBarrier's arguments after the command buffer: one image layout transition."""
    return (
        src_stage,
        dst_stage,
        0,
        0,
        None,
        0,
        None,
        1,
        [
            vk.VkImageMemoryBarrier(
                srcAccessMask=src_access,
                dstAccessMask=dst_access,
                oldLayout=old,
                newLayout=new,
                srcQueueFamilyIndex=vk.VK_QUEUE_FAMILY_IGNORED,
                dstQueueFamilyIndex=vk.VK_QUEUE_FAMILY_IGNORED,
                image=img,
                subresourceRange=_range(),
            )
        ],
    )


def _copy_region(w: int, h: int, rect: Rect | None = None) -> Any:
    """One buffer->image (or back) copy of ``rect`` (default: the whole w x h image); the buffer holds the whole
    image, rows of ``w`` pixels, so the rectangle's rows are picked out of it by offset and row length."""
    x0, y0, x1, y1 = rect or (0, 0, w, h)
    return vk.VkBufferImageCopy(
        bufferOffset=(y0 * w + x0) * 4,
        bufferRowLength=w,
        bufferImageHeight=0,
        imageSubresource=vk.VkImageSubresourceLayers(
            aspectMask=vk.VK_IMAGE_ASPECT_COLOR_BIT, mipLevel=0, baseArrayLayer=0, layerCount=1
        ),
        imageOffset=vk.VkOffset3D(x0, y0, 0),
        imageExtent=vk.VkExtent3D(x1 - x0, y1 - y0, 1),
    )


@dataclass
class PanelSwapchain:
    ctx: VkContext
    session: xr.Session
    width: int
    height: int
    fmt: int
    swapchain: Any = None
    images: list[Any] = field(default_factory=list)
    cmds: list[Any] = field(default_factory=list)
    uploaded_bytes: int = 0  # copied into the image by the last acquire
    _buf: Any = None
    _mem: Any = None
    _mapped: Any = None
    _staging: Any = None  # the mapped buffer as rows of pixels: always the whole current panel
    _damage: ImageDamage | None = None
    _recorded: list[Any] = field(default_factory=list)  # per image: the regions its command buffer copies
    _regions: dict[Rect, Any] = field(default_factory=dict)  # VkBufferImageCopy per rectangle
    _barrier_args: dict[tuple[int, bool], Any] = field(default_factory=dict)
    _index: int = -1
    _rb: tuple[Any, Any, Any] | None = None

    def create(self) -> None:
        self.swapchain = create_panel_swapchain(self.session, self.fmt, self.width, self.height,
                                                xr.SwapchainUsageFlags.TRANSFER_SRC_BIT)  # for read-back
        imgs = xr.enumerate_swapchain_images(self.swapchain, xr.SwapchainImageVulkanKHR)
        self.images = [vk.ffi.cast("VkImage", ctypes.cast(i.image, ctypes.c_void_p).value) for i in imgs]
        nbytes = self.width * self.height * 4
        self._buf, self._mem, self._mapped = self.ctx.host_buffer(nbytes, vk.VK_BUFFER_USAGE_TRANSFER_SRC_BIT)
        # the staging buffer is the panel's full copy on the CPU side: a change is written into its rectangle,
        # and each image is brought up to date from it with the rectangles that image missed
        self._staging = np.frombuffer(self._mapped, dtype=np.uint8, count=nbytes).reshape(self.height, -1)
        self._damage = ImageDamage(len(self.images), self.width, self.height)
        self._recorded = [None] * len(self.images)
        self.cmds = vk.vkAllocateCommandBuffers(
            self.ctx.device,
            vk.VkCommandBufferAllocateInfo(
                commandPool=self.ctx.pool,
                level=vk.VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                commandBufferCount=len(self.images),
            ),
        )

    def acquire(self, pixels: Any, rect: Rect | None = None) -> Any:
        """Acquire + wait an image and stage ``pixels``, the rows of ``rect`` (default: the whole panel);
        returns the command buffer to submit, which copies into the image what it lacks (the rectangle, and
        those written into the other images since it was last written)."""
        x0, y0, x1, y1 = rect = rect or (0, 0, self.width, self.height)
        assert self._damage is not None and self._staging is not None, "acquire before create"
        self._index = acquire_image(self.swapchain)
        self._staging[y0:y1, x0 * 4 : x1 * 4] = np.frombuffer(pixels, dtype=np.uint8).reshape(y1 - y0, -1)
        regions = self._damage.write(self._index, rect)
        self.uploaded_bytes = sum((r[2] - r[0]) * (r[3] - r[1]) * 4 for r in regions)
        whole = regions == [self._damage.full]
        cb = self.cmds[self._index]
        if self._recorded[self._index] == (whole, regions):
            return cb  # the same copies as last time (the steady state: one value changing): submitted again
        # recorded again when the regions change; the previous submission of it has finished (the caller settled).
        # Every Vulkan struct built in Python costs tens of microseconds: the barriers and copy regions are kept
        self._recorded[self._index] = (whole, regions)
        before, after = self._barriers(self._index, whole)
        copies = [self._copy(r) for r in regions]
        vk.vkBeginCommandBuffer(cb, _BEGIN)
        vk.vkCmdPipelineBarrier(cb, *before)
        vk.vkCmdCopyBufferToImage(cb, self._buf, self.images[self._index], vk.VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL,
                                  len(copies), copies)
        vk.vkCmdPipelineBarrier(cb, *after)
        vk.vkEndCommandBuffer(cb)
        return cb

    def _copy(self, rect: Rect) -> Any:
        region = self._regions.get(rect)
        if region is None:
            if len(self._regions) >= 64:  # bounded: a panel has a handful of pieces, unions of them a few more
                self._regions.clear()
            region = self._regions[rect] = _copy_region(self.width, self.height, rect)
        return region

    def _barriers(self, index: int, whole: bool) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """vkCmdPipelineBarrier's arguments (after the command buffer) around the copy into image ``index``."""
        key = (index, whole)
        pair = self._barrier_args.get(key)
        if pair is None:
            img = self.images[index]
            # a partial update keeps the rest of the image: leave its layout from the last release (UNDEFINED
            # would allow the driver to discard the contents); a whole-image write may discard them
            pair = self._barrier_args[key] = (
                _barrier_args(
                    img,
                    vk.VK_IMAGE_LAYOUT_UNDEFINED if whole else vk.VK_IMAGE_LAYOUT_COLOR_ATTACHMENT_OPTIMAL,
                    vk.VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL,
                    0 if whole else vk.VK_ACCESS_COLOR_ATTACHMENT_WRITE_BIT,
                    vk.VK_ACCESS_TRANSFER_WRITE_BIT,
                    vk.VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT if whole else vk.VK_PIPELINE_STAGE_COLOR_ATTACHMENT_OUTPUT_BIT,
                    vk.VK_PIPELINE_STAGE_TRANSFER_BIT,
                ),
                _barrier_args(
                    img,
                    vk.VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL,
                    vk.VK_IMAGE_LAYOUT_COLOR_ATTACHMENT_OPTIMAL,
                    vk.VK_ACCESS_TRANSFER_WRITE_BIT,
                    vk.VK_ACCESS_COLOR_ATTACHMENT_WRITE_BIT,
                    vk.VK_PIPELINE_STAGE_TRANSFER_BIT,
                    vk.VK_PIPELINE_STAGE_COLOR_ATTACHMENT_OUTPUT_BIT,
                ),
            )
        return pair

    @property
    def image_index(self) -> int:
        """The swapchain image acquired last."""
        return self._index

    def release(self) -> None:
        xr.release_swapchain_image(self.swapchain, xr.SwapchainImageReleaseInfo())

    def read_back(self) -> bytes:
        """Copy the last uploaded swapchain image back to the CPU (debug/tests: proves what the
        compositor gets).
        Must be called between acquire()'s submit and release()."""
        nbytes = self.width * self.height * 4
        if self._rb is None:
            self._rb = self.ctx.host_buffer(nbytes, vk.VK_BUFFER_USAGE_TRANSFER_DST_BIT)
        img = self.images[self._index]
        cb = vk.vkAllocateCommandBuffers(
            self.ctx.device,
            vk.VkCommandBufferAllocateInfo(
                commandPool=self.ctx.pool, level=vk.VK_COMMAND_BUFFER_LEVEL_PRIMARY, commandBufferCount=1
            ),
        )[0]
        vk.vkBeginCommandBuffer(cb, vk.VkCommandBufferBeginInfo(flags=vk.VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT))
        _barrier(
            cb,
            img,
            vk.VK_IMAGE_LAYOUT_COLOR_ATTACHMENT_OPTIMAL,
            vk.VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL,
            vk.VK_ACCESS_COLOR_ATTACHMENT_WRITE_BIT,
            vk.VK_ACCESS_TRANSFER_READ_BIT,
            vk.VK_PIPELINE_STAGE_COLOR_ATTACHMENT_OUTPUT_BIT,
            vk.VK_PIPELINE_STAGE_TRANSFER_BIT,
        )
        vk.vkCmdCopyImageToBuffer(
            cb,
            img,
            vk.VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL,
            self._rb[0],
            1,
            [_copy_region(self.width, self.height)],
        )
        _barrier(
            cb,
            img,
            vk.VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL,
            vk.VK_IMAGE_LAYOUT_COLOR_ATTACHMENT_OPTIMAL,
            vk.VK_ACCESS_TRANSFER_READ_BIT,
            vk.VK_ACCESS_COLOR_ATTACHMENT_WRITE_BIT,
            vk.VK_PIPELINE_STAGE_TRANSFER_BIT,
            vk.VK_PIPELINE_STAGE_COLOR_ATTACHMENT_OUTPUT_BIT,
        )
        vk.vkEndCommandBuffer(cb)
        self.ctx.submit_and_wait([cb])
        vk.vkFreeCommandBuffers(self.ctx.device, self.ctx.pool, 1, [cb])
        return bytes(self._rb[2][0:nbytes])

    def destroy(self) -> None:
        dev = self.ctx.device
        if self.cmds:
            vk.vkFreeCommandBuffers(dev, self.ctx.pool, len(self.cmds), self.cmds)
        for buf, mem in ((self._buf, self._mem), (self._rb[0], self._rb[1]) if self._rb else (None, None)):
            if buf is not None:
                vk.vkUnmapMemory(dev, mem)
                vk.vkDestroyBuffer(dev, buf, None)
                vk.vkFreeMemory(dev, mem, None)
        if self.swapchain is not None:
            xr.destroy_swapchain(self.swapchain)
