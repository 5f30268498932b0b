// Window/level of a venogram frame on the GPU (csnav, crates/workstation/src/app/view2d.rs).
//
// The frame is uploaded as stored 16-bit samples (R16Uint, MONOCHROME2: higher = brighter)
// and read with textureLoad (integer textures cannot be filtered; the view shows the image at
// about one screen pixel per image pixel, so nearest is what a reader expects of X-ray).
// params: x = window centre, y = window width (stored units, width >= 1), z = 1 to invert,
// w unused. Output is the display grey value; the render target is sRGB, so the value is
// written linearised to come out unchanged on screen.

#import bevy_sprite::mesh2d_vertex_output::VertexOutput

@group(#{MATERIAL_BIND_GROUP}) @binding(0) var<uniform> params: vec4<f32>;
@group(#{MATERIAL_BIND_GROUP}) @binding(1) var frame: texture_2d<u32>;

fn srgb_to_linear(c: f32) -> f32 {
    if (c <= 0.04045) {
        return c / 12.92;
    }
    return pow((c + 0.055) / 1.055, 2.4);
}

@fragment
fn fragment(mesh: VertexOutput) -> @location(0) vec4<f32> {
    let size = vec2<i32>(textureDimensions(frame));
    let xy = clamp(vec2<i32>(floor(mesh.uv * vec2<f32>(size))), vec2<i32>(0, 0), size - vec2<i32>(1, 1));
    let stored = f32(textureLoad(frame, xy, 0).r);
    let width = max(params.y, 1.0);
    var grey = clamp((stored - (params.x - 0.5 * width)) / width, 0.0, 1.0);
    if (params.z > 0.5) {
        grey = 1.0 - grey;
    }
    let l = srgb_to_linear(grey);
    return vec4<f32>(l, l, l, 1.0);
}
