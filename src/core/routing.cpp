#include "routing.hpp"
