// The emulator's launcher: runs a registered kernel over its grid (blocks in
// ascending order, or descending for grids of odd gx + gy + gz), each
// block's CUDA threads as fibers on the calling OS thread, switched at
// barriers (see emulate.h). build.rs generates the registry (every
// `extern "C"` kernel of kernels/*.cu with a thunk that unpacks its
// parameters from an array of addresses, as cuLaunchKernel takes them).
#include "registry.h"

#include <setjmp.h>
#include <signal.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

// Bounds of the kernels' `__shared__` storage: build.rs moves every
// function-local static of the kernel files (what `__shared__` declares)
// into the section `hhi_emu_shared`, whose ends the linker names.
extern "C" char __start_hhi_emu_shared[] __attribute__((weak));
extern "C" char __stop_hhi_emu_shared[] __attribute__((weak));

// Dynamic shared memory (HHI_DYNAMIC_SHARED): the most a block may take on
// sm_90 (227 KB), of which the running launch has `dynamic_bytes`.
constexpr size_t DYNAMIC_SHARED_MAX = 227 * 1024;
alignas(1024) static char dynamic_storage[DYNAMIC_SHARED_MAX];
static size_t dynamic_bytes;

namespace emu {
int lane, warp;
WarpExchange* warp_exchange;

std::map<std::string, Kernel>& registry() {
    static std::map<std::string, Kernel> r;
    return r;
}

namespace {

enum class State { Runnable, AtBlock, AtWarp, AtWarpgroup, Done };

// One cp.async in flight: where it lands and the 4 or 16 bytes it read.
struct AsyncCopy {
    void* dst;
    size_t bytes;
    std::array<unsigned char, 16> data;
};

// A CUDA thread's cp.async state: the copies issued since its last commit,
// then its committed groups, oldest first.
struct AsyncCopies {
    std::vector<AsyncCopy> open;
    std::deque<std::vector<AsyncCopy>> groups;
};

// A thread's wgmma ops: how many it has issued (op k of every thread of a
// warpgroup is the same op), those since its last commit, then its
// committed groups, oldest first.
struct WgmmaQueue {
    int issued = 0;
    std::vector<int> open;
    std::deque<std::vector<int>> groups;
};
// One wgmma op of a warpgroup: its shape and shared-memory operands (the
// same in every thread), and each thread's A registers (unless A is in
// shared memory), accumulator input and accumulators.
struct WgmmaOp {
    int n = 0;
    bool trans_b = false, scale_d = false, a_shared = false;
    WgmmaOperand a_smem, b;
    std::array<std::array<uint32_t, 4>, 128> a{};
    std::vector<float> c;  // [thread][n / 2], where scale_d
    std::array<float*, 128> d{};
    // Whether a thread's accumulators were those of an op still running
    // when it issued this one: its input is then that op's result.
    std::array<bool, 128> chained{};
    int issued = 0, done = 0;
    // Its shared-memory operands' bits as the first thread to issue it found
    // them (A's [k][m] where a_shared, B's [k][n]). A GPU reads them after
    // the whole warpgroup issued it, before the wait: a thread computing at
    // its wait that finds other bits there (a barrier missing before the
    // issue, so other threads' writes came after it, or a write racing the
    // read) faults.
    std::vector<uint16_t> a_bits, b_bits;
};
// A CUDA thread: its own stack, entered once per launch through its ucontext
// and afterwards switched with _setjmp/_longjmp (no system call per switch).
struct Fiber {
    ucontext_t context;
    jmp_buf jump;
    State state;
    bool started = false;
    AsyncCopies copies;
    WgmmaQueue wgmma;
    bool unfenced_copies = false;  // cp.async copies landed since its last fence_shared_to_async
    bool wgmma_fenced = false;     // wgmma.fence since its start or its last wgmma wait
};
std::vector<Fiber>* block_fibers;                // the running block's threads
std::vector<std::map<int, WgmmaOp>> wgmma_ops;  // the running block's ops in flight, by warpgroup and number

constexpr size_t STACK_BYTES = 128 * 1024;

// Fiber stacks, kept between launches (allocated uninitialised: zeroing
// megabytes per launch would cost more than the kernels).
char* stack(int t) {
    static std::vector<std::unique_ptr<char[]>> pool;
    while ((int)pool.size() <= t) pool.emplace_back(new char[STACK_BYTES]);
    return pool[t].get();
}

jmp_buf scheduler;
Fiber* running;
const Thunk* kernel_thunk;
void** kernel_params;

// The functions that call _setjmp stay out of line, so no caller's locals
// live across a jump.
__attribute__((noinline)) void park(State why) {
    running->state = why;
    if (_setjmp(running->jump) == 0) _longjmp(scheduler, 1);
}

// Runs the kernel once per block, parking as Done in between; never returns.
void fiber_main() {
    for (;;) {
        (*kernel_thunk)(kernel_params);
        park(State::Done);
    }
}

__attribute__((noinline)) void resume(Fiber& f) {
    if (_setjmp(scheduler) != 0) return;  // the fiber parked
    if (f.started) _longjmp(f.jump, 1);
    f.started = true;
    setcontext(&f.context);
}

// Points each fiber at its stack and at fiber_main (out of line: getcontext
// returns twice, like _setjmp).
__attribute__((noinline)) void prepare(std::vector<Fiber>& fibers) {
    ucontext_t entry;
    getcontext(&entry);
    for (size_t t = 0; t < fibers.size(); t++) {
        Fiber& f = fibers[t];
        f.context = entry;
        // The copy's floating-point state pointer still points into `entry`
        // (glibc keeps it inside the ucontext): point it at the copy's own,
        // or setcontext loads whatever this stack frame later holds.
        f.context.uc_mcontext.fpregs = &f.context.__fpregs_mem;
        f.context.uc_stack.ss_sp = stack(int(t));
        f.context.uc_stack.ss_size = STACK_BYTES;
        f.context.uc_link = nullptr;  // fiber_main never returns
        makecontext(&f.context, fiber_main, 0);
    }
}

// A GPU's shared memory holds whatever it last held when a block starts:
// fill it with 0xff bytes (NaN in f32 and bf16, -1 as an integer), so a
// kernel that reads what its block never wrote (a tile's unloaded tail
// multiplied by a zero weight, a counter never cleared) fails its test
// instead of finding the previous block's values.
void poison_shared_memory() {
    const uintptr_t start = reinterpret_cast<uintptr_t>(__start_hhi_emu_shared), stop = reinterpret_cast<uintptr_t>(__stop_hhi_emu_shared);
    if (start != 0 && stop > start) std::memset(__start_hhi_emu_shared, 0xff, stop - start);
    std::memset(dynamic_storage, 0xff, dynamic_bytes);
}

// Runs warp `w`'s runnable threads (lowest lane first, or highest when
// `reverse`), releasing its warp barriers as they complete, until each of
// them is done or waits at the block barrier (or the warp is stuck: some
// lanes at a warp barrier, others at the block's).
void run_warp(std::vector<Fiber>& fibers, int w, bool reverse) {
    const int first = 32 * w, end = std::min(int(fibers.size()), first + 32);
    for (;;) {
        for (int i = first; i < end; i++) {
            const int t = reverse ? end - 1 - (i - first) : i;
            Fiber& f = fibers[t];
            if (f.state != State::Runnable) continue;
            running = &f;
            threadIdx = {unsigned(t) % blockDim.x, (unsigned(t) / blockDim.x) % blockDim.y, unsigned(t) / (blockDim.x * blockDim.y)};
            lane = t % 32;
            warp = w;
            resume(f);
        }
        bool ready = true, waiting = false;
        for (int t = first; t < end; t++) {
            ready &= fibers[t].state == State::Done || fibers[t].state == State::AtWarp;
            waiting |= fibers[t].state == State::AtWarp;
        }
        if (!ready || !waiting) return;
        for (int t = first; t < end; t++)
            if (fibers[t].state == State::AtWarp) fibers[t].state = State::Runnable;
    }
}

// Releases the threads of each warpgroup (128 threads) whose every live
// thread waits at its barrier (a wgmma wait); whether there were any.
bool release_warpgroups(std::vector<Fiber>& fibers) {
    bool released = false;
    for (size_t first = 0; first < fibers.size(); first += 128) {
        const size_t end = std::min(fibers.size(), first + 128);
        bool all = true, any = false;
        for (size_t t = first; t < end; t++) {
            all &= fibers[t].state == State::Done || fibers[t].state == State::AtWarpgroup;
            any |= fibers[t].state == State::AtWarpgroup;
        }
        if (!all || !any) continue;
        for (size_t t = first; t < end; t++)
            if (fibers[t].state == State::AtWarpgroup) fibers[t].state = State::Runnable;
        released = true;
    }
    return released;
}
// Runs one block to completion; false if its threads deadlock at barriers.
// Between two block barriers each warp runs as far as it can before the next
// one starts, and between two warp barriers each lane before the next (first
// to last, or last to first when `reverse`): a legal order on a GPU, and one
// in which a thread that reads shared memory another has yet to write, or
// overwrites what another has yet to read, with no barrier between them,
// finds NaNs (cp.async's) or stale values.
bool run_block(std::vector<Fiber>& fibers, int nwarps, bool reverse) {
    poison_shared_memory();
    for (auto& f : fibers) {
        f.state = State::Runnable;
        f.copies = {};  // a block's copies never land in the next block's shared memory
        f.wgmma = {};
        f.unfenced_copies = false;
        f.wgmma_fenced = false;
    }
    block_fibers = &fibers;
    wgmma_ops.assign((fibers.size() + 127) / 128, {});
    std::vector<WarpExchange> exchanges(nwarps, WarpExchange{{}, 0});
    warp_exchange = exchanges.data();
    for (;;) {
        for (int i = 0; i < nwarps; i++) run_warp(fibers, reverse ? nwarps - 1 - i : i, reverse);
        if (release_warpgroups(fibers)) continue;
        bool block_ready = true, any_live = false;
        for (auto& f : fibers) {
            any_live |= f.state != State::Done;
            block_ready &= f.state == State::Done || f.state == State::AtBlock;
        }
        if (!any_live) return true;
        if (!block_ready) return false;  // a warp barrier that some lane waits for at the block's
        for (auto& f : fibers)
            if (f.state == State::AtBlock) f.state = State::Runnable;
    }
}

}  // namespace

void wait_block() { park(State::AtBlock); }
void wait_warp() { park(State::AtWarp); }

namespace {
std::string first_fault;  // of the running launch

// Keeps `what` as the launch's fault, unless it has one, naming the running thread.
void fault(const char* what) {
    if (!first_fault.empty()) return;
    char text[224];
    std::snprintf(text, sizeof text, "%s in block (%u, %u, %u) thread (%u, %u, %u)", what, blockIdx.x, blockIdx.y, blockIdx.z, threadIdx.x, threadIdx.y, threadIdx.z);
    first_fault = text;
}
}  // namespace

void misaligned(const char* what, const void* addr, size_t alignment) {
    char text[128];
    std::snprintf(text, sizeof text, "misaligned address: %s %p (needs %zu bytes)", what, addr, alignment);
    fault(text);
}

void require_full_warp(const char* what) {
    const uint32_t present = warp_exchange[warp].present;
    if (present == 0xffffffffu) return;
    char text[128];
    std::snprintf(text, sizeof text, "%s by a warp with lanes that exited or that the block lacks (lanes present: 0x%08x)", what, present);
    fault(text);
}

void cp_async_issue(void* smem, const void* gmem, size_t bytes) {
    check_aligned(gmem, bytes, "cp.async from");
    check_aligned(smem, bytes, "cp.async to");
    AsyncCopy copy{smem, bytes, {}};
    std::memcpy(copy.data.data(), gmem, bytes);
    std::memset(smem, 0xff, bytes);  // NaN in f32 and bf16 until the copy lands
    running->copies.open.push_back(copy);
}

void cp_async_commit_group() {
    AsyncCopies& c = running->copies;
    c.groups.push_back(std::move(c.open));
    c.open.clear();
}

// cp.async.wait_group n: every committed group but the newest n has landed.
void cp_async_complete_all_but(int newest) {
    AsyncCopies& c = running->copies;
    while ((int)c.groups.size() > newest) {
        for (const AsyncCopy& copy : c.groups.front()) std::memcpy(copy.dst, copy.data.data(), copy.bytes);
        running->unfenced_copies |= !c.groups.front().empty();
        c.groups.pop_front();
    }
}
void fence_shared_to_async() { running->unfenced_copies = false; }
void wgmma_fence() { running->wgmma_fenced = true; }
char* dynamic_shared() { return dynamic_storage; }
namespace {
// The end of the shared memory `at` lies in (the static storage, or the
// launch's dynamic bytes), or null where it lies in neither.
const char* shared_end(const char* at) {
    if (at >= __start_hhi_emu_shared && at < __stop_hhi_emu_shared) return __stop_hhi_emu_shared;
    if (at >= dynamic_storage && at < dynamic_storage + dynamic_bytes) return dynamic_storage + dynamic_bytes;
    return nullptr;
}
}  // namespace
// Offsets into one shared window: the static storage, then the dynamic bytes
// (from the next 1 KB boundary), as a GPU places them.
uint32_t shared_address(const void* p) {
    const char* at = static_cast<const char*>(p);
    if (shared_end(at) == nullptr) {
        fault("a wgmma descriptor for memory outside shared memory");
        return 0;
    }
    if (at >= dynamic_storage) return uint32_t((__stop_hhi_emu_shared - __start_hhi_emu_shared + 1023) / 1024 * 1024 + (at - dynamic_storage));
    return uint32_t(at - __start_hhi_emu_shared);
}
namespace {
// The running thread's place in its warpgroup: (warpgroup, thread 0-127).
std::pair<int, int> warpgroup_slot() {
    const unsigned t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    return {int(t / 128), int(t % 128)};
}
// Element (k, mn) of a shared-memory wgmma operand through its descriptor
// (wgmma.cuh; `mn_major` for B with trans_b); null, with a fault, for what
// the emulator does not implement or memory past shared memory's end.
const bf16* descriptor_element(const WgmmaOperand& operand, bool mn_major, int k, int n) {
    const uint64_t bits = operand.desc;
    if (bits >> 62 != 0 || (bits >> 49 & 7) != 0) {
        fault("a swizzled wgmma descriptor (the emulator implements unswizzled ones only)");
        return nullptr;
    }
    if ((bits & 0x3fff) != (shared_address(operand.at) & 0x3ffff) >> 4) {
        fault("a wgmma descriptor whose address field is not its operand's");
        return nullptr;
    }
    const size_t lbo = (bits >> 16 & 0x3fff) << 4, sbo = (bits >> 32 & 0x3fff) << 4;
    const size_t inner = mn_major ? (k % 8) * 16 + (n % 8) * 2 : (n % 8) * 16 + (k % 8) * 2;
    const char* at = static_cast<const char*>(operand.at) + (n / 8) * sbo + (k / 8) * lbo + inner;
    const char* end = shared_end(static_cast<const char*>(operand.at));
    if (at + 2 > end) {
        fault("a wgmma operand past the end of shared memory");
        return nullptr;
    }
    return reinterpret_cast<const bf16*>(at);
}
// Whether an operand element still holds the bits `issued` it had at the
// op's first issue; a fault if not.
bool unchanged(bf16 now, uint16_t issued) {
    if (now.bits == issued) return true;
    fault("a wgmma's shared-memory operand changed between its first issue and the wait (a barrier missing before the wgmma, or a write racing it)");
    return false;
}
// An operand's bits at the op's first issue: [k][mn], mn < `extent`.
std::vector<uint16_t> operand_bits(const WgmmaOperand& operand, bool mn_major, int extent) {
    std::vector<uint16_t> bits(16 * size_t(extent));
    for (int k = 0; k < 16; k++)
        for (int mn = 0; mn < extent; mn++) {
            const bf16* at = descriptor_element(operand, mn_major, k, mn);
            if (at == nullptr) return bits;
            bits[size_t(extent) * k + mn] = at->bits;
        }
    return bits;
}
// The running thread's accumulators of `op` (thread `slot` of the warpgroup).
void wgmma_compute(const WgmmaOp& op, int slot, float* d) {
    if (op.issued != 128) {
        fault("wgmma by a warpgroup with threads that exited or did not issue it");
        return;
    }
    const int w = slot / 32, g = slot % 32 / 4, t = slot % 4;
    for (int i = 0; i < op.n / 8; i++)
        for (int e = 0; e < 4; e++) {
            const int row = 16 * w + g + 8 * (e / 2), col = 8 * i + 2 * t + e % 2;
            float sum = 0.0f;
            for (int k = 0; k < 16; k++) {
                float a;
                if (op.a_shared) {
                    const bf16* at = descriptor_element(op.a_smem, false, k, row);
                    if (at == nullptr || !unchanged(*at, op.a_bits[64 * k + row])) return;
                    a = __bfloat162float(*at);
                } else {
                    a = half_of(op.a[32 * (row / 16) + 4 * (row % 8) + (k % 8) / 2][(row % 16) / 8 + 2 * (k / 8)], k);
                }
                const bf16* b = descriptor_element(op.b, op.trans_b, k, col);
                if (b == nullptr || !unchanged(*b, op.b_bits[op.n * k + col])) return;
                sum += a * __bfloat162float(*b);
            }
            const float c = !op.scale_d ? 0.0f : op.chained[slot] ? d[4 * i + e] : op.c[size_t(slot) * (op.n / 2) + 4 * i + e];
            d[4 * i + e] = c + sum;
        }
}
}  // namespace
void wgmma_issue(int n, const uint32_t* a, WgmmaOperand a_smem, WgmmaOperand b, bool trans_b, bool scale_d, float* d) {
    if (blockDim.x * blockDim.y * blockDim.z % 128 != 0) fault("wgmma by a block whose threads do not make whole warpgroups");
    for (const Fiber& f : *block_fibers)
        if (f.unfenced_copies) fault("wgmma while cp.async copies landed with no fence.proxy.async after them (fence_shared_to_async)");
    if (!running->wgmma_fenced) fault("wgmma with no wgmma.fence since the thread's start or its last wgmma wait (its registers may be stale)");
    const auto [group, slot] = warpgroup_slot();
    const int number = running->wgmma.issued++;
    auto [it, fresh] = wgmma_ops[group].try_emplace(number);
    WgmmaOp& op = it->second;
    const bool a_shared = a == nullptr;
    if (fresh) {
        op.n = n, op.trans_b = trans_b, op.scale_d = scale_d, op.a_shared = a_shared, op.a_smem = a_smem, op.b = b;
        if (scale_d) op.c.assign(128 * size_t(n / 2), 0.0f);
        if (a_shared) op.a_bits = operand_bits(a_smem, false, 64);
        op.b_bits = operand_bits(b, trans_b, n);
    } else if (op.n != n || op.trans_b != trans_b || op.scale_d != scale_d || op.a_shared != a_shared || op.a_smem.desc != a_smem.desc ||
               op.a_smem.at != a_smem.at || op.b.desc != b.desc || op.b.at != b.at) {
        fault("wgmma ops whose shape, descriptors or flags differ across the warpgroup");
    }
    if (!a_shared)
        for (int r = 0; r < 4; r++) op.a[slot][r] = a[r];
    // Ops on the same accumulators chain, as on the GPU: an op's input is
    // the result of the one before, which completes first (issue order).
    WgmmaQueue& q = running->wgmma;
    auto running_on_d = [&](int earlier) {
        auto it = wgmma_ops[group].find(earlier);
        return it != wgmma_ops[group].end() && it->second.d[slot] == d;
    };
    bool chained = std::any_of(q.open.begin(), q.open.end(), running_on_d);
    for (const auto& g : q.groups) chained |= std::any_of(g.begin(), g.end(), running_on_d);
    op.chained[slot] = chained;
    if (!chained) {
        if (op.scale_d) std::memcpy(&op.c[size_t(slot) * (n / 2)], d, sizeof(float) * (n / 2));
        std::memset(d, 0xff, sizeof(float) * (n / 2));  // NaN until the wait
    }
    op.d[slot] = d;
    op.issued++;
    running->wgmma.open.push_back(number);
}
void wgmma_commit_group() {
    WgmmaQueue& q = running->wgmma;
    q.groups.push_back(std::move(q.open));
    q.open.clear();
}
// wgmma.wait_group n: every committed group but the newest n is complete.
void wgmma_complete_all_but(int newest) {
    park(State::AtWarpgroup);  // every thread of the warpgroup has issued the ops it waits for
    running->wgmma_fenced = false;  // the program may now touch the registers
    WgmmaQueue& q = running->wgmma;
    const auto [group, slot] = warpgroup_slot();
    while ((int)q.groups.size() > newest) {
        for (int number : q.groups.front()) {
            auto it = wgmma_ops[group].find(number);  // there: this thread issued it
            WgmmaOp& op = it->second;
            wgmma_compute(op, slot, op.d[slot]);
            if (++op.done == 128) wgmma_ops[group].erase(it);
        }
        q.groups.pop_front();
    }
}

}  // namespace emu

void hhi_emu_register();  // generated by build.rs: registers every kernel
void hhi_emu_register_selftests();  // selftest.cpp


// While a launch runs, a segmentation fault is a kernel touching the guard
// page past a buffer's end (src/backend/cuda/guarded.rs): say which kernel
// and thread, then hand the fault back to the handler from before (the Rust
// runtime's), under which the access faults again and the process stops.
static const char* launching = nullptr;  // the running kernel's name
static struct sigaction previous_segv;

static void on_segv(int, siginfo_t* info, void*) {
    if (launching != nullptr) {
        char text[320];
        const int n = std::snprintf(text, sizeof text,
                                    "\nemulator: kernel `%s`, block (%u, %u, %u) thread (%u, %u, %u), touched %p: past the end of a device buffer\n", launching,
                                    blockIdx.x, blockIdx.y, blockIdx.z, threadIdx.x, threadIdx.y, threadIdx.z, info->si_addr);
        [[maybe_unused]] const ssize_t written = write(2, text, n > 0 ? size_t(n) : 0);
    }
    sigaction(SIGSEGV, &previous_segv, nullptr);
}

static void note_segv_in_kernels() {
    struct sigaction action {};
    action.sa_sigaction = on_segv;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, &previous_segv);
}

// With HHI_EMU_TRACE=FILE, the process appends to FILE a line `registered
// NAME` for every kernel it could launch, and `launched NAME` for each it
// does, the first time (scripts/kernel-coverage: the kernels no test runs).
static const char* trace_file() {
    static const char* file = std::getenv("HHI_EMU_TRACE");
    return file != nullptr && *file != '\0' ? file : nullptr;
}

static void trace(const char* event, const std::string& name) {
    if (FILE* f = std::fopen(trace_file(), "a")) {
        std::fprintf(f, "%s %s\n", event, name.c_str());
        std::fclose(f);
    }
}

static void register_all() {
    note_segv_in_kernels();
    hhi_emu_register();
    hhi_emu_register_selftests();
    if (trace_file())
        for (const auto& [name, kernel] : emu::registry()) trace("registered", name);
}

static std::mutex launch_lock;

// Notes the launch of `name` where tracing (under the launch lock).
static void trace_launch(const char* name) {
    static std::set<std::string> seen;
    if (trace_file() && seen.insert(name).second) trace("launched", name);
}

// Returns 0; 1 when no kernel has this name; 2 when the block's threads
// deadlock at barriers (a barrier not reached by every live thread); 3 when a
// GPU would refuse the launch's shape (limits, __launch_bounds__, over
// 227 KB of dynamic shared memory), its
// parameters differ from the kernel's in number or size, or a thread
// faulted (a misaligned access, an mma or ldmatrix by a partial warp),
// described in `fault` (NUL-terminated, written under the launch lock, so
// concurrent launches cannot overwrite it).
extern "C" int hhi_emu_launch(const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned shared_bytes,
                              void** params, const size_t* param_sizes, size_t param_count, char* fault, size_t fault_len) {
    static std::once_flag once;
    std::call_once(once, register_all);
    auto it = emu::registry().find(name);
    if (it == emu::registry().end()) return 1;
    std::lock_guard<std::mutex> serial(launch_lock);
    struct Running {  // names the kernel for on_segv until the launch returns
        explicit Running(const char* name) { launching = name; }
        ~Running() { launching = nullptr; }
    } running(name);
    trace_launch(name);
    const unsigned long long threads_per_block = 1ull * bx * by * bz;
    const char* refused = nullptr;
    if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0) refused = "an empty grid or block";
    else if (gy > 65535 || gz > 65535 || gx > 2147483647u) refused = "a grid beyond the device's limits (x < 2^31, y and z ≤ 65535)";
    else if (bz > 64 || threads_per_block > 1024) refused = "a block beyond the device's limits (≤ 1024 threads, z ≤ 64)";
    else if (threads_per_block > it->second.max_threads) refused = "more threads a block than the kernel's __launch_bounds__ or registers allow";
    else if (shared_bytes > DYNAMIC_SHARED_MAX) refused = "more dynamic shared memory than a block may have (227 KB)";
    if (refused) {
        // What a GPU answers such a launch with (invalid configuration, or too many resources requested).
        std::snprintf(fault, fault_len, "launch refused: %s (grid %u×%u×%u, block %u×%u×%u, bound %u threads, %u bytes of dynamic shared memory)", refused, gx,
                      gy, gz, bx, by, bz, it->second.max_threads, shared_bytes);
        return 3;
    }
    // What a GPU would read: cuLaunchKernel copies each parameter at the size
    // the kernel declares, so a launcher passing another size (a 32-bit count
    // for a 64-bit one, a struct laid out differently) or another number of
    // parameters hands the kernel garbage.
    const std::vector<size_t>& declared = it->second.param_sizes;
    if (param_count != declared.size()) {
        std::snprintf(fault, fault_len, "the launch passes %zu parameters where the kernel takes %zu", param_count, declared.size());
        return 3;
    }
    for (size_t i = 0; i < param_count; i++) {
        if (param_sizes[i] != declared[i]) {
            std::snprintf(fault, fault_len, "parameter %zu is %zu bytes in the kernel, %zu in the launch", i, declared[i], param_sizes[i]);
            return 3;
        }
    }
    gridDim = {gx, gy, gz};
    blockDim = {bx, by, bz};
    dynamic_bytes = shared_bytes;
    emu::kernel_thunk = &it->second.thunk;
    emu::kernel_params = params;
    const int threads = int(bx * by * bz), nwarps = (threads + 31) / 32;
    std::vector<emu::Fiber> fibers(threads);
    emu::prepare(fibers);
    emu::first_fault.clear();
    // A GPU runs a grid's blocks in no promised order: grids whose sides add
    // up to an odd number run last to first (deterministic for a shape), so a
    // kernel that counts on an order (a block reading what a lower-numbered
    // one wrote) fails at one of the shapes the tests launch it at.
    const bool backwards = (gx + gy + gz) % 2 == 1;
    const unsigned long long blocks = 1ull * gx * gy * gz;
    for (unsigned long long i = 0; i < blocks; i++) {
        const unsigned long long b = backwards ? blocks - 1 - i : i;
        const unsigned x = unsigned(b % gx), y = unsigned(b / gx % gy), z = unsigned(b / gx / gy);
        blockIdx = {x, y, z};
        if (!emu::run_block(fibers, nwarps, (x + y + z) % 2 == 1)) return 2;
        if (!emu::first_fault.empty()) {
            std::snprintf(fault, fault_len, "%s", emu::first_fault.c_str());
            return 3;
        }
    }
    return 0;
}
