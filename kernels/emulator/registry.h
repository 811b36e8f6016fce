// The emulator's kernel registry: a kernel is found by its `extern "C"` name
// and called through a thunk that unpacks its parameters from an array of
// addresses (cuLaunchKernel's convention), with their sizes and its launch
// bound. build.rs generates one registration function per kernels/*.cu file
// that fills it.
#pragma once

#include "emulate.h"

#include <functional>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace emu {

using Thunk = std::function<void(void**)>;

// A kernel: how to call it, the size of each of its parameters (a launch
// must pass exactly these), and the most threads a block its
// __launch_bounds__ and (where nvcc reported them) its registers allow;
// 1024, the device's limit, where neither says less.
struct Kernel {
    Thunk thunk;
    std::vector<size_t> param_sizes;
    unsigned max_threads;
};
std::map<std::string, Kernel>& registry();

template <typename... Args, size_t... I>
void call(void (*f)(Args...), void** params, std::index_sequence<I...>) {
    f(*static_cast<std::remove_reference_t<Args>*>(params[I])...);
}

template <typename... Args>
Kernel kernel(void (*f)(Args...), unsigned max_threads) {
    Thunk thunk = [f](void** params) { call(f, params, std::index_sequence_for<Args...>{}); };
    return {thunk, {sizeof(std::remove_reference_t<Args>)...}, max_threads};
}

}  // namespace emu
