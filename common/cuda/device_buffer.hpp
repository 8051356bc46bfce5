// DeviceBuffer<T>: an owning array in GPU memory (cudaMalloc, never managed
// memory), plus the host<->device copies that go with it.
//
// Copies taking a stream are asynchronous: the host memory must stay alive
// (and, for copies to the host, unread) until the stream is synchronized. The
// to_device / to_host conveniences block and suit setup code and tests.
#pragma once

#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include <cuda_runtime_api.h>

#include "common/cuda/cuda_check.hpp"

namespace kvc::cuda {

template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t count) : count_(count) {
    if (count_ > 0) KVC_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&data_), bytes()));
  }
  ~DeviceBuffer() {
    // Never throws: a failing cudaFree here means the context is already gone.
    if (data_ != nullptr) cudaFree(data_);
  }
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), count_(std::exchange(other.count_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      DeviceBuffer old(std::move(*this));
      data_ = std::exchange(other.data_, nullptr);
      count_ = std::exchange(other.count_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return count_; }
  std::size_t bytes() const { return count_ * sizeof(T); }

 private:
  T* data_ = nullptr;
  std::size_t count_ = 0;
};

// Asynchronous copies of `count` elements on `stream`.
template <typename T>
void copy_to_device(T* device_dst, const T* host_src, std::size_t count, cudaStream_t stream) {
  KVC_CUDA_CHECK(
      cudaMemcpyAsync(device_dst, host_src, count * sizeof(T), cudaMemcpyHostToDevice, stream));
}
template <typename T>
void copy_to_host(T* host_dst, const T* device_src, std::size_t count, cudaStream_t stream) {
  KVC_CUDA_CHECK(
      cudaMemcpyAsync(host_dst, device_src, count * sizeof(T), cudaMemcpyDeviceToHost, stream));
}

// Grows `buffer` to at least `count` elements; the old contents are not kept.
template <typename T>
void grow(DeviceBuffer<T>& buffer, std::size_t count) {
  if (buffer.size() < count) buffer = DeviceBuffer<T>(count);
}

// Asynchronous upload of `host` into `device`, grown to fit (metadata a kernel reads).
template <typename T>
void upload(DeviceBuffer<T>& device, const std::vector<T>& host, cudaStream_t stream) {
  grow(device, host.size());
  copy_to_device(device.data(), host.data(), host.size(), stream);
}

// Blocking conveniences: a new buffer holding `host`, and a buffer's contents on the host.
template <typename T>
DeviceBuffer<T> to_device(std::span<const T> host) {
  DeviceBuffer<T> buffer(host.size());
  if (!host.empty())
    KVC_CUDA_CHECK(cudaMemcpy(buffer.data(), host.data(), buffer.bytes(), cudaMemcpyHostToDevice));
  return buffer;
}
template <typename T>
DeviceBuffer<T> to_device(const std::vector<T>& host) {
  return to_device(std::span<const T>(host));
}
template <typename T>
std::vector<T> to_host(const DeviceBuffer<T>& buffer) {
  std::vector<T> host(buffer.size());
  if (!host.empty())
    KVC_CUDA_CHECK(cudaMemcpy(host.data(), buffer.data(), buffer.bytes(), cudaMemcpyDeviceToHost));
  return host;
}

}  // namespace kvc::cuda
