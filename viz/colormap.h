#pragma once
// Colour maps for values in [0, 1]: viridis (default) and cividis, both perceptually uniform and readable
// with the common colour-vision deficiencies. Each is built from a handful of anchor colours of the
// published maps (evenly spaced in t), interpolated in the OKLab colour space into a 256-entry table,
// so lightness rises smoothly from the dark end to the light end.
#include <array>
#include <string>
#include <vector>

#include "viz/image.h"

namespace gradlab::viz {

class Colormap {
 public:
  static const Colormap& viridis();
  static const Colormap& cividis();
  // "viridis" or "cividis"; throws gradlab::Error naming the choices otherwise.
  static const Colormap& by_name(const std::string& name);

  const std::string& name() const { return name_; }
  // t is clamped to [0, 1]; NaN maps to a loud magenta so broken data is never mistaken for a value.
  Color operator()(double t) const;
  const std::array<Color, 256>& table() const { return table_; }

  static constexpr Color nan_color{255, 0, 255};

 private:
  Colormap(std::string name, const std::vector<Color>& anchors);
  std::string name_;
  std::array<Color, 256> table_{};
};

// OKLab lightness of an sRGB colour, in [0, 1] (used to check that the maps rise monotonically).
double oklab_lightness(Color c);

}  // namespace gradlab::viz
