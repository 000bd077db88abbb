#include "wire.hpp"
