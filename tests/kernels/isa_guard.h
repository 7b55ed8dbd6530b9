// Restores the active kernel ISA when a test that switches it (set_active_isa) ends.
#pragma once

#include "kernels/kernel_table.h"

namespace insitu {

class IsaGuard {
 public:
  IsaGuard() : saved_(active_kernels().isa) {}
  ~IsaGuard() { set_active_isa(saved_); }
  IsaGuard(const IsaGuard&) = delete;
  IsaGuard& operator=(const IsaGuard&) = delete;

 private:
  Isa saved_;
};

}  // namespace insitu
